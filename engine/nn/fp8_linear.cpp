#include "engine/nn/fp8_linear.h"

#include <ATen/ATen.h>

namespace la::nn {
namespace {

constexpr double kE4m3Max = 448.0;

// (values in e4m3, 1 / s as a 0-dim float32 tensor).
std::pair<at::Tensor, at::Tensor> quantize(const at::Tensor& t) {
  const at::Tensor f = t.to(at::kFloat);
  const at::Tensor amax = f.abs().max().clamp_min(1e-12);
  const at::Tensor s = (kE4m3Max / amax).clamp_max(kE4m3Max);
  const at::Tensor q = (f * s).clamp(-kE4m3Max, kE4m3Max).to(at::kFloat8_e4m3fn);
  return {q, s.reciprocal()};
}

}  // namespace

Fp8Weight quantize_fp8(const at::Tensor& weight) {
  auto [q, inv] = quantize(weight);
  return {q.contiguous(), inv};
}

at::Tensor fp8_linear(const at::Tensor& x, const Fp8Weight& w, const at::Tensor& bias) {
  const int64_t in = x.size(-1), out = w.weight.size(0);
  auto [xq, x_inv] = quantize(x.reshape({-1, in}));
  std::optional<at::Tensor> b;
  if (bias.defined()) b = bias.to(at::kBFloat16);
  // mat2 must be column-major: the transpose of the row-major [out, in] weight is.
  const at::Tensor y = at::_scaled_mm(xq, w.weight.t(), x_inv, w.scale, b, std::nullopt, at::kBFloat16,
                                      /*use_fast_accum=*/true);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  return y.view(shape).to(x.scalar_type());
}

}  // namespace la::nn

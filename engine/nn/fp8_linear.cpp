#include "engine/nn/fp8_linear.h"

#include <ATen/ATen.h>

#include "engine/runtime/cuda_runtime_info.h"

namespace la::nn {
namespace {

constexpr double kE4m3Max = 448.0;

// (values in e4m3, 1 / s as a 0-dim float32 tensor). Runs for every activation of every linear,
// so it makes three passes over `t` rather than the six of the formula written out (a float32
// copy, abs, max, product, clamp, cast: on an H200 the fp8 DiT was 10 % slower than bf16 with
// those), and gives the same bits:
// - amax from aminmax on `t` itself: min, max and negation are exact in any float dtype;
// - the product in float32 (a 1-element float32 scale promotes it), rounded once to e4m3;
// - no clamp: |x| <= amax makes |x * s| <= 448 up to float32's rounding of s and of the product
//   (below 448.0001), and e4m3 rounds anything under 464 to at most 448, as the clamp would.
std::pair<at::Tensor, at::Tensor> quantize(const at::Tensor& t) {
  const auto [lo, hi] = at::aminmax(t);
  const at::Tensor amax = at::maximum(hi, lo.neg()).to(at::kFloat).clamp_min(1e-12);
  const at::Tensor s = (kE4m3Max / amax).clamp_max(kE4m3Max);
  const at::Tensor q = at::mul(t, s.reshape({1})).to(at::kFloat8_e4m3fn);
  return {q, s.reciprocal()};
}

}  // namespace

Fp8Target fp8_target(const c10::Device& device) {
  if (!device.is_cuda()) return {};
  const runtime::ComputeCapability cc = runtime::compute_capability(device.index() < 0 ? 0 : device.index());
  return {true, cc.major, cc.minor};
}

std::string fp8_unsupported_reason(const Fp8Target& target, const std::vector<std::array<int64_t, 2>>& weight_shapes) {
  if (!target.cuda) return "";
  if (target.major < 8 || (target.major == 8 && target.minor < 9))
    return "fp8 matmul (_scaled_mm) needs CUDA compute capability 8.9 or later (Ada, Hopper), the device has " +
           std::to_string(target.major) + "." + std::to_string(target.minor);
  for (const auto& s : weight_shapes)
    if (s[0] % 16 != 0 || s[1] % 16 != 0)
      return "fp8 matmul (_scaled_mm) needs both weight dimensions to be multiples of 16, a linear has [" +
             std::to_string(s[0]) + ", " + std::to_string(s[1]) + "]";
  return "";
}

Fp8Weight quantize_fp8(const at::Tensor& weight) {
  auto [q, inv] = quantize(weight.contiguous());
  return {q.contiguous(), inv};
}

at::Tensor fp8_linear(const at::Tensor& x, const Fp8Weight& w, const at::Tensor& bias) {
  const int64_t in = x.size(-1), out = w.weight.size(0);
  // The first operand must be row-major: a non-contiguous x (a transposed
  // view, say) is made contiguous before it is quantised.
  auto [xq, x_inv] = quantize(x.reshape({-1, in}).contiguous());
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

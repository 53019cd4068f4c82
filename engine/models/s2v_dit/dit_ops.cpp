#include "engine/models/s2v_dit/dit_ops.h"

#include <ATen/ATen.h>
#include <cmath>

#include "engine/nn/attention.h"

namespace la::models {
namespace {

// A small host tensor made on the CPU each step (time embedding, RoPE
// angles) onto `device` without waiting: on CUDA it goes through pinned
// memory with a non-blocking copy on the current stream (the pinned block is
// not reused before the copy ran: LibTorch's host allocator records an event),
// so the step does not synchronise the host with the device. The values are
// the host's, bit for bit.
at::Tensor host_to_device(const at::Tensor& host, at::Device device) {
  if (!device.is_cuda() || !host.is_cpu()) return host.to(device);
  return host.contiguous().pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace

at::Tensor apply_linear(const at::Tensor& x, const Linear& l) {
  if (l.fp8.weight.defined()) return nn::fp8_linear(x, l.fp8, l.bias);
  return at::linear(x, l.weight, l.bias);
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, at::ScalarType dtype) {
  const at::Tensor f = x.to(at::kFloat);
  const at::Tensor normed = f * at::rsqrt(f.pow(2).mean(-1, true) + eps);
  return normed.to(dtype) * weight;
}

at::Tensor layer_norm_f32(const at::Tensor& x, double eps) {
  return at::layer_norm(x.to(at::kFloat), {x.size(-1)}, {}, {}, eps);
}

at::Tensor apply_rope(const at::Tensor& x, const RopeTable& table, at::ScalarType dtype) {
  const int64_t l = x.size(0), heads = x.size(1), half = x.size(2) / 2;
  const at::Tensor pairs = x.to(at::kDouble).view({l, heads, half, 2});
  const at::Tensor re = pairs.select(3, 0), im = pairs.select(3, 1);
  const at::Tensor cos = table.cos.to(x.device(), at::kDouble).unsqueeze(1);
  const at::Tensor sin = table.sin.to(x.device(), at::kDouble).unsqueeze(1);
  const at::Tensor out = at::stack({re * cos - im * sin, re * sin + im * cos}, 3);
  return out.view({l, heads, 2 * half}).to(at::kFloat).to(dtype);
}

at::Tensor attend_heads(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  auto bhld = [](const at::Tensor& t) { return t.transpose(0, 1).unsqueeze(0); };
  return nn::attention(bhld(q), bhld(k), bhld(v)).squeeze(0).transpose(0, 1);
}

RopeTable rope_on_device(const RopeTable& table, at::Device device) {
  return {host_to_device(table.cos.to(at::kDouble), device), host_to_device(table.sin.to(at::kDouble), device)};
}

at::Tensor patchify(const at::Tensor& latents, const Linear& conv) {
  const auto k = conv.weight.sizes().slice(2);
  const at::Tensor y = at::conv3d(latents.unsqueeze(0).to(conv.weight.scalar_type()), conv.weight, conv.bias, k);
  return y.flatten(2).squeeze(0).transpose(0, 1);  // [tokens, dim]
}

TimeConditioning time_conditioning(const DitWeights& w, const S2vDitConfig& cfg, const std::vector<float>& t) {
  const int64_t half = cfg.freq_dim / 2, frames = static_cast<int64_t>(t.size());
  const at::Tensor pos = at::tensor(std::vector<float>(t)).to(at::kDouble).unsqueeze(1);  // [F, 1]
  const at::Tensor omega = at::pow(10000.0, -at::arange(half, at::kDouble) / static_cast<double>(half));
  const at::Tensor phase = pos * omega.unsqueeze(0);
  const at::Tensor sinusoid = at::cat({at::cos(phase), at::sin(phase)}, 1).to(at::kFloat);
  const at::Tensor s = host_to_device(sinusoid, w.time_in.weight.device());
  TimeConditioning tc;
  tc.e = apply_linear(at::silu(apply_linear(s, w.time_in)), w.time_out);
  tc.e0 = apply_linear(at::silu(tc.e), w.time_projection).view({frames, 6, cfg.dim});
  return tc;
}

at::Tensor embed_text(const DitWeights& w, const S2vDitConfig& cfg, const at::Tensor& context) {
  const at::Tensor c = context.to(w.text_in.weight.device(), w.text_in.weight.scalar_type());
  const at::Tensor padded = at::constant_pad_nd(c, {0, 0, 0, cfg.text_len - c.size(0)});
  return apply_linear(at::gelu(apply_linear(padded, w.text_in), "tanh"), w.text_out);
}

at::Tensor unpatchify(const at::Tensor& tokens, int64_t frames, int64_t grid_h, int64_t grid_w, int64_t out_dim) {
  // Channel index inside a token is (q*2 + r)*out_dim + c for patch row q, column r.
  return tokens.view({frames, grid_h, grid_w, 2, 2, out_dim})
      .permute({5, 0, 1, 3, 2, 4})
      .reshape({out_dim, frames, grid_h * 2, grid_w * 2});
}

}  // namespace la::models

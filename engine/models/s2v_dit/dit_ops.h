// Small functional pieces of the S2V DiT, with the reference's cast points.
// `dtype` below is the model's compute dtype (float32 on the CPU, bfloat16 on
// CUDA); every "round to dtype" is a no-op in float32 and reproduces the
// reference's bf16 storage points otherwise.
#pragma once

#include <ATen/core/Tensor.h>
#include <vector>

#include "engine/models/s2v_dit/dit_weights.h"
#include "engine/models/s2v_dit/rope.h"

namespace la::models {

at::Tensor apply_linear(const at::Tensor& x, const Linear& l);

// WanRMSNorm over the last (full-width) dim: normalised in float32, rounded
// to `dtype`, then multiplied by the weight (a second rounding in bf16).
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps, at::ScalarType dtype);

// Non-affine LayerNorm over the last dim in float32.
at::Tensor layer_norm_f32(const at::Tensor& x, double eps);

// Rotates interleaved pairs of x [L, heads, head_dim] by the table (cos/sin
// [L, head_dim/2], fp16-exact) in float64, as the reference's rope_apply
// does, and returns the result in `dtype`. Pass a table from
// rope_on_device: the rotation runs per layer and step, the copy should not.
at::Tensor apply_rope(const at::Tensor& x, const RopeTable& table, at::ScalarType dtype);

// The table in float64 on `device`, as apply_rope uses it.
RopeTable rope_on_device(const RopeTable& table, at::Device device);

// Attention of q [Lq, heads, d] over k/v [Lk, heads, d] (no mask, scale
// 1/sqrt(d)) through the engine's one attention entry point -> [Lq, heads, d].
at::Tensor attend_heads(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// Conv3d with kernel = stride = (kt, kh, kw) on latents [C, F, h, w], as
// tokens [F/kt * h/kh * w/kw, dim] in (f, y, x) row-major order.
at::Tensor patchify(const at::Tensor& latents, const Linear& conv);

// Time conditioning of one call: `e` [F, dim] for the head and `e0`
// [F, 6, dim] for the blocks, float32 (the reference's fp32 island), for the
// per-frame timesteps `t`.
struct TimeConditioning {
  at::Tensor e, e0;
};
TimeConditioning time_conditioning(const DitWeights& w, const S2vDitConfig& cfg, const std::vector<float>& t);

// text_embedding of a prompt's umT5 states [L <= text_len, text_dim],
// zero-padded to text_len first (the pad rows are attended, as in the
// reference): [text_len, dim] in the model dtype.
at::Tensor embed_text(const DitWeights& w, const S2vDitConfig& cfg, const at::Tensor& context);

// Un-patchify the head's output [F*h'*w', 4*out_dim] to latents [out_dim, F, 2h', 2w'].
at::Tensor unpatchify(const at::Tensor& tokens, int64_t frames, int64_t grid_h, int64_t grid_w, int64_t out_dim);

}  // namespace la::models

// One CausalWanS2VAttentionBlock (reference causal_model_s2v.py:348-435):
// modulated self-attention, text cross-attention, modulated FFN, with the
// reference's cast points (see docs/dit.md). The self-attention core is passed
// in, because the sink prefill and the per-block denoising steps attend to
// different keys (the cond cache alone vs the KV ring plus the cond cache).
#pragma once

#include <ATen/core/Tensor.h>
#include <functional>

#include "engine/models/s2v_dit/dit_weights.h"

namespace la::models {

// The six modulation vectors of a block, each [G, 1, dim] float32: one row
// per token group (a latent frame of noisy tokens, or all cond tokens).
struct Modulation {
  at::Tensor shift1, scale1, gate1, shift2, scale2, gate2;
};
// blocks.{i}.modulation + e0 rows [G, 6, dim] (float32).
Modulation block_modulation(const BlockWeights& w, const at::Tensor& e0_rows);

// Projected, normed, not yet rotated self-attention inputs, [L, heads, head_dim].
struct Qkv {
  at::Tensor q, k, v;
};
// Returns the attention output [L, heads, head_dim] for the block's tokens.
using SelfAttentionCore = std::function<at::Tensor(const Qkv&)>;

// Text cross-attention keys and values of one layer, [text_len, heads, head_dim]:
// they depend only on the prompt, so a session computes them once per prompt.
struct CrossKv {
  at::Tensor k, v;
};
CrossKv cross_attention_kv(const BlockWeights& w, const S2vDitConfig& cfg, const at::Tensor& text,
                           at::ScalarType dtype);

struct BlockOptions {
  at::ScalarType dtype;  // compute dtype
  // The reference rounds the cross-attention input to bf16 even in float32
  // (norm3(x.to(bfloat16))); false removes that round trip (fixture dit_io_fp32norm3).
  bool norm3_bf16_round_trip = true;
};

// x [G, n, dim] in the compute dtype (G modulation groups of n tokens) -> same shape.
at::Tensor block_forward(const BlockWeights& w, const S2vDitConfig& cfg, const at::Tensor& x,
                         const Modulation& mod, const SelfAttentionCore& attend, const CrossKv& text,
                         const BlockOptions& options);

}  // namespace la::models

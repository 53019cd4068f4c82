#include "engine/models/s2v_dit/transformer_block.h"

#include <ATen/ATen.h>

#include "engine/models/s2v_dit/dit_ops.h"

namespace la::models {
Modulation block_modulation(const BlockWeights& w, const at::Tensor& e0_rows) {
  const at::Tensor m = (w.modulation + e0_rows).unsqueeze(2);  // [G, 6, 1, dim]
  return {m.select(1, 0), m.select(1, 1), m.select(1, 2), m.select(1, 3), m.select(1, 4), m.select(1, 5)};
}

CrossKv cross_attention_kv(const BlockWeights& w, const S2vDitConfig& cfg, const at::Tensor& text,
                           at::ScalarType dtype) {
  const int64_t heads = cfg.num_heads, d = cfg.dim / cfg.num_heads;
  const at::Tensor k = rms_norm(apply_linear(text, w.cross_attn.k), w.cross_attn.norm_k, cfg.eps, dtype);
  const at::Tensor v = apply_linear(text, w.cross_attn.v);
  return {k.view({-1, heads, d}), v.view({-1, heads, d})};
}

at::Tensor block_forward(const BlockWeights& w, const S2vDitConfig& cfg, const at::Tensor& x_in,
                         const Modulation& mod, const SelfAttentionCore& attend, const CrossKv& text,
                         const BlockOptions& o) {
  const int64_t heads = cfg.num_heads, d = cfg.dim / cfg.num_heads;
  const int64_t groups = x_in.size(0), per_group = x_in.size(1), tokens = groups * per_group;
  const at::ScalarType dt = o.dtype;

  // Self-attention on LN1(x) (rounded to the model dtype, then modulated in fp32).
  at::Tensor a = layer_norm_f32(x_in, cfg.eps).to(dt).to(at::kFloat);
  a = (a * (1 + mod.scale1) + mod.shift1).to(dt).view({tokens, cfg.dim});
  Qkv qkv{rms_norm(apply_linear(a, w.self_attn.q), w.self_attn.norm_q, cfg.eps, dt).view({tokens, heads, d}),
          rms_norm(apply_linear(a, w.self_attn.k), w.self_attn.norm_k, cfg.eps, dt).view({tokens, heads, d}),
          apply_linear(a, w.self_attn.v).view({tokens, heads, d})};
  at::Tensor y = apply_linear(attend(qkv).reshape({tokens, cfg.dim}), w.self_attn.o);
  // From here the residual stream is float32 until the block ends.
  at::Tensor x = x_in.to(at::kFloat) + y.view({groups, per_group, cfg.dim}).to(at::kFloat) * mod.gate1;

  // Text cross-attention on norm3(x), with the reference's bf16 round trip.
  const at::ScalarType rt = o.norm3_bf16_round_trip ? at::kBFloat16 : at::kFloat;
  const at::Tensor c = at::layer_norm(x.to(rt).to(at::kFloat), {cfg.dim}, w.norm3_weight.to(at::kFloat),
                                      w.norm3_bias.to(at::kFloat), cfg.eps)
                           .to(rt)
                           .to(dt)
                           .view({tokens, cfg.dim});
  const at::Tensor q = rms_norm(apply_linear(c, w.cross_attn.q), w.cross_attn.norm_q, cfg.eps, dt);
  const at::Tensor cross = attend_heads(q.view({tokens, heads, d}), text.k, text.v).reshape({tokens, cfg.dim});
  x = x + apply_linear(cross, w.cross_attn.o).view({groups, per_group, cfg.dim}).to(at::kFloat);

  // FFN on LN2(x), which stays float32 (x is float32 here) before modulation.
  const at::Tensor b = (layer_norm_f32(x, cfg.eps) * (1 + mod.scale2) + mod.shift2).to(dt);
  const at::Tensor f = apply_linear(at::gelu(apply_linear(b, w.ffn_in), "tanh"), w.ffn_out);
  x = x + f.to(at::kFloat) * mod.gate2;
  return x.to(dt);
}

}  // namespace la::models

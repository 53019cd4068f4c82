#include "engine/models/s2v_dit/audio_injector.h"

#include <ATen/ATen.h>

#include "engine/models/s2v_dit/dit_ops.h"
#include "engine/nn/attention.h"

namespace la::models {

at::Tensor inject_audio(const AudioInjectorWeights& w, const S2vDitConfig& cfg, const at::Tensor& hidden,
                        const at::Tensor& global, const at::Tensor& local, at::ScalarType dt) {
  const int64_t frames = hidden.size(0), per_frame = hidden.size(1);
  const int64_t heads = cfg.num_heads, d = cfg.dim / cfg.num_heads;
  constexpr double kAdaLayerNormEps = 1e-5;  // diffusers AdaLayerNorm's default, not the DiT's 1e-6

  const at::Tensor m = apply_linear(at::silu(global.to(dt)), w.adain).to(at::kFloat);  // [F, 2*dim]
  const at::Tensor shift = m.slice(1, 0, cfg.dim).unsqueeze(1), scale = m.slice(1, cfg.dim).unsqueeze(1);
  const at::Tensor a = (layer_norm_f32(hidden, kAdaLayerNormEps) * (1 + scale) + shift).to(dt);

  const at::Tensor audio = local.to(dt);
  const at::Tensor q = rms_norm(apply_linear(a, w.attn.q), w.attn.norm_q, cfg.eps, dt);
  const at::Tensor k = rms_norm(apply_linear(audio, w.attn.k), w.attn.norm_k, cfg.eps, dt);
  const at::Tensor v = apply_linear(audio, w.attn.v);
  // Batch = latent frames: each frame's tokens see only that frame's audio tokens.
  auto bhld = [&](const at::Tensor& t) { return t.view({frames, -1, heads, d}).transpose(1, 2); };
  const at::Tensor o = nn::attention(bhld(q), bhld(k), bhld(v)).transpose(1, 2).reshape({frames, per_frame, cfg.dim});
  return hidden + apply_linear(o, w.attn.o).to(hidden.scalar_type());
}

}  // namespace la::models

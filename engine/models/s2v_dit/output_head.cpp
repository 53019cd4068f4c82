#include "engine/models/s2v_dit/output_head.h"

#include <ATen/ATen.h>

#include "engine/models/s2v_dit/dit_ops.h"

namespace la::models {

at::Tensor output_head(const DitWeights& w, const S2vDitConfig& cfg, const at::Tensor& x, const at::Tensor& e,
                       at::ScalarType dt) {
  const at::Tensor mod = w.head_modulation + e.unsqueeze(1);  // [F, 2, dim]
  const at::Tensor shift = mod.select(1, 0).unsqueeze(1), scale = mod.select(1, 1).unsqueeze(1);
  const at::Tensor n = layer_norm_f32(x, cfg.eps).to(dt).to(at::kFloat);
  const at::Tensor out = apply_linear(n * (1 + scale) + shift, w.head);
  return out.flatten(0, 1).to(dt);
}

}  // namespace la::models

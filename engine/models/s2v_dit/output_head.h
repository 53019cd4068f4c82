// The DiT's output head (reference causal_model_s2v.py:204-221): per-frame
// modulated LayerNorm from the time embedding `e` (not the blocks' e0), then a
// float32 linear to 2x2 patches of out_dim channels.
#pragma once

#include <ATen/core/Tensor.h>

#include "engine/models/s2v_dit/dit_weights.h"

namespace la::models {

// x [F, T, dim] (compute dtype), e [F, dim] float32 -> [F*T, 4*out_dim] in the compute dtype.
at::Tensor output_head(const DitWeights& w, const S2vDitConfig& cfg, const at::Tensor& x, const at::Tensor& e,
                       at::ScalarType dtype);

}  // namespace la::models

// Audio injection after selected blocks (reference causal_model_s2v.py:698-765):
// each latent frame's tokens, AdaLN-modulated by the frame's global audio token
// (diffusers AdaLayerNorm: eps 1e-5, shift then scale), attend to that frame's
// audio tokens (local tokens + padding token), and the result is added back.
#pragma once

#include <ATen/core/Tensor.h>

#include "engine/models/s2v_dit/dit_weights.h"

namespace la::models {

// hidden [F, T, dim] (compute dtype), global [F, dim], local [F, tokens, dim]
// (float32, from CausalAudioEncoder::block_tokens) -> hidden + injection.
at::Tensor inject_audio(const AudioInjectorWeights& w, const S2vDitConfig& cfg, const at::Tensor& hidden,
                        const at::Tensor& global, const at::Tensor& local, at::ScalarType dtype);

}  // namespace la::models

// Forward functions of the Wan 2.1 VAE's modules on [B,C,T,H,W] tensors, with
// the causal feature cache threaded through in the reference's order.
#pragma once

#include "engine/models/wan_vae/feature_cache.h"
#include "engine/models/wan_vae/weights.h"

namespace la::models::wan_vae {

// A 3x3x3 causal conv whose history is the cache slot's last two frames.
at::Tensor cached_conv3x3x3(const at::Tensor& x, const nn::Conv& conv, FeatureCache& cache);
at::Tensor residual_forward(const at::Tensor& x, const Residual& r, FeatureCache& cache);
at::Tensor attention_forward(const at::Tensor& x, const Attention& a);
at::Tensor resample_forward(const at::Tensor& x, const Resample& r, FeatureCache& cache);
// The whole encoder or decoder on one chunk (conv_in ... head).
at::Tensor coder_forward(const at::Tensor& x, const Coder& c, FeatureCache& cache);

}  // namespace la::models::wan_vae

// The Wan 2.1 VAE's tensors, organised by module. Immutable once loaded;
// shared by every stream that decodes with it.
#pragma once

#include <ATen/core/Tensor.h>
#include <vector>

#include "engine/models/wan_vae_layout.h"
#include "engine/nn/conv.h"

namespace la::io { class WeightStore; }

namespace la::models::wan_vae {

struct Residual {
  at::Tensor norm1_gamma;  // residual.0
  nn::Conv conv1;          // residual.2, 3x3x3
  at::Tensor norm2_gamma;  // residual.3
  nn::Conv conv2;          // residual.6, 3x3x3
  nn::Conv shortcut;       // 1x1x1; undefined weight when in == out
};

struct Attention {
  at::Tensor norm_gamma;  // [C,1,1]
  nn::Conv to_qkv, proj;  // 1x1 Conv2d
};

enum class ResampleMode { kUpsample2d, kUpsample3d, kDownsample2d, kDownsample3d };

struct Resample {
  ResampleMode mode;
  nn::Conv conv;       // resample.1, Conv2d 3x3
  nn::Conv time_conv;  // only for the 3d modes
};

// One entry of encoder.downsamples / decoder.upsamples.
struct Layer {
  bool is_resample = false;
  Residual residual;
  Resample resample;
};

struct Coder {
  nn::Conv conv_in;  // <coder>.conv1
  std::vector<Layer> layers;
  bool middle_before_layers = false;  // true for the decoder
  Residual middle_first;
  Attention middle_attention;
  Residual middle_last;
  at::Tensor head_gamma;  // head.0
  nn::Conv head_conv;     // head.2
};

struct Weights {
  WanVaeConfig config;
  Coder encoder, decoder;
  nn::Conv quant_conv;       // "conv1": 1x1x1, 2z -> 2z, after the encoder
  nn::Conv post_quant_conv;  // "conv2": 1x1x1, z -> z, before the decoder
  // Latent normalisation in the model dtype, as the reference keeps it.
  at::Tensor mean, inv_std;  // [z]
};

// Reads every tensor of `config`'s layout from `store` (shape-checked),
// fails on tensors the layout does not name, and moves them to device/dtype.
Weights load_weights(io::WeightStore& store, const WanVaeConfig& config, at::Device device,
                     at::ScalarType dtype);

}  // namespace la::models::wan_vae

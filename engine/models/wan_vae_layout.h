// Configuration and checkpoint key layout of the Wan 2.1 VAE (WanVAE_).
// The real Wan2.1_VAE.pth carries no config: the shape parameters are read
// back from its tensors (see vae_config_from_shapes).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "engine/models/tensor_spec.h"

namespace la::io { class JsonConfig; }

namespace la::models {

struct WanVaeConfig {
  int64_t dim = 96;  // base channels
  int64_t z_dim = 16;
  std::vector<int64_t> dim_mult = {1, 2, 4, 4};
  int64_t num_res_blocks = 2;
  std::vector<bool> temporal_downsample = {false, true, true};  // "temperal_downsample" in the reference

  // Fixture metadata / JSON spelling of the reference constructor arguments.
  static WanVaeConfig from_json(const io::JsonConfig& cfg);
};

std::vector<TensorSpec> wan_vae_tensor_specs(const WanVaeConfig& cfg);

}  // namespace la::models

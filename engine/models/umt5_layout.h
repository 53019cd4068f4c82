// Configuration and checkpoint key layout of the umT5 encoder
// (models_t5_umt5-xxl-enc-bf16.pth). The .pth carries no config; the loader
// reads the sizes back from the tensor shapes.
#pragma once

#include <vector>

#include "engine/models/tensor_spec.h"

namespace la::io { class JsonConfig; }

namespace la::models {

struct Umt5Config {
  int64_t vocab = 256384;
  int64_t dim = 4096;
  int64_t dim_attn = 4096;
  int64_t dim_ffn = 10240;
  int64_t num_heads = 64;
  int64_t num_layers = 24;
  int64_t num_buckets = 32;

  static Umt5Config from_json(const io::JsonConfig& cfg);  // the fixtures' spelling
};

std::vector<TensorSpec> umt5_tensor_specs(const Umt5Config& cfg);

}  // namespace la::models

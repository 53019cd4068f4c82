// Configuration (HF config.json) and checkpoint key layout of wav2vec2 with
// stable layer norm (XLSR-53 large, as in wav2vec2-large-xlsr-53-english).
#pragma once

#include <string>
#include <vector>

#include "engine/models/tensor_spec.h"

namespace la::io { class JsonConfig; }

namespace la::models {

struct Wav2Vec2Config {
  int64_t hidden_size = 1024;
  int64_t num_hidden_layers = 24;
  int64_t num_attention_heads = 16;
  int64_t intermediate_size = 4096;
  std::vector<int64_t> conv_dim = {512, 512, 512, 512, 512, 512, 512};
  std::vector<int64_t> conv_kernel = {10, 3, 3, 3, 3, 2, 2};
  std::vector<int64_t> conv_stride = {5, 2, 2, 2, 2, 2, 2};
  bool conv_bias = true;
  int64_t num_conv_pos_embeddings = 128;
  int64_t num_conv_pos_embedding_groups = 16;
  double layer_norm_eps = 1e-5;
  int64_t vocab_size = 33;  // the CTC head, unused by the pipeline but present in the file

  // Throws CheckpointError on missing keys or the variants we do not support
  // (feat_extract_norm != "layer", do_stable_layer_norm == false).
  static Wav2Vec2Config from_json(const io::JsonConfig& cfg);
  std::string to_json() const;  // config.json in the HF layout
};

std::vector<TensorSpec> wav2vec2_tensor_specs(const Wav2Vec2Config& cfg);

}  // namespace la::models

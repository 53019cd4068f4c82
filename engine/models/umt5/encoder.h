// The umT5 text encoder (models_t5_umt5-xxl-enc-bf16.pth): token ids in,
// hidden states out. Immutable after loading; safe to share between threads.
//
//   auto t5 = Umt5Encoder::load(ckpt + "/models_t5_umt5-xxl-enc-bf16.pth", at::kCPU, at::kFloat);
//   at::Tensor hidden = t5->forward(ids, mask);   // [B,L] -> [B,L,dim]
#pragma once

#include <ATen/core/Tensor.h>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/models/umt5_layout.h"

namespace la::io { class WeightStore; }

namespace la::models {

class Umt5Encoder {
 public:
  // Sizes are read from the tensors (the .pth has no config). Throws io::CheckpointError.
  static std::shared_ptr<const Umt5Encoder> load(const std::string& path, at::Device device, at::ScalarType dtype);
  static std::shared_ptr<const Umt5Encoder> from_store(io::WeightStore& store, const Umt5Config& config,
                                                       at::Device device, at::ScalarType dtype);

  const Umt5Config& config() const { return config_; }
  at::Device device() const { return token_embedding_.device(); }
  at::ScalarType dtype() const { return token_embedding_.scalar_type(); }

  // ids [B,L] integers in [0, vocab); mask [B,L], non-zero on real tokens
  // (padded keys are excluded from attention). Returns [B,L,dim] in the model
  // dtype, every position (callers keep the first seq_len). Throws std::invalid_argument.
  at::Tensor forward(const at::Tensor& ids, const std::optional<at::Tensor>& mask = std::nullopt) const;

  // The bidirectional relative-position bucket of every (query, key) pair,
  // [lq, lk] int64: offset num_buckets/2 for keys after the query, exact
  // buckets below num_buckets/4, logarithmic up to max_distance beyond.
  static at::Tensor relative_position_buckets(int64_t lq, int64_t lk, int64_t num_buckets,
                                              int64_t max_distance = 128);
  // Block `layer`'s attention bias [1, heads, lq, lk].
  at::Tensor position_bias(int64_t layer, int64_t lq, int64_t lk) const;

 private:
  struct Block {
    at::Tensor norm1, q, k, v, o, norm2, gate, fc1, fc2, pos_embedding;
  };
  Umt5Encoder() = default;
  at::Tensor block_forward(const Block& b, const at::Tensor& x, const at::Tensor& key_mask, const at::Tensor& buckets,
                           int64_t layer) const;
  at::Tensor bias_from_buckets(int64_t layer, const at::Tensor& buckets) const;

  Umt5Config config_;
  at::Tensor token_embedding_;
  std::vector<Block> blocks_;
  at::Tensor final_norm_;
};

}  // namespace la::models

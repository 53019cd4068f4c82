// The name, shape and initial statistics of one checkpoint tensor. Model
// layouts list these so the key set of the real release is written down once
// and shared by the loaders, the checkpoint generator and the tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace la::models {

// How tools/la-mkcheckpoint fills a tensor with seeded random values so that
// activations of a random model stay in a sane range.
enum class Init : uint8_t {
  kMatrix,     // N(0, 1/fan_in), fan_in = product of all dims but the first
  kNormScale,  // 1 + N(0, 0.02): norm gains
  kSmall,      // N(0, 0.02): biases, modulation tables, learned tokens
  kEmbedding,  // N(0, 1): token embeddings
  kPositive,   // |N(0,1)| + 0.5: weight-norm magnitudes
};

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  Init init;
};

// Appends "<prefix>.weight" ([out,in...], kMatrix) and "<prefix>.bias" ([out], kSmall).
void add_linear(std::vector<TensorSpec>& out, const std::string& prefix,
                std::vector<int64_t> weight_shape, bool bias = true);

int64_t numel(const TensorSpec& spec);

}  // namespace la::models

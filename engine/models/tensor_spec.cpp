#include "engine/models/tensor_spec.h"

namespace la::models {

void add_linear(std::vector<TensorSpec>& out, const std::string& prefix,
                std::vector<int64_t> weight_shape, bool bias) {
  const int64_t out_features = weight_shape.at(0);
  out.push_back({prefix + ".weight", std::move(weight_shape), Init::kMatrix});
  if (bias) out.push_back({prefix + ".bias", {out_features}, Init::kSmall});
}

int64_t numel(const TensorSpec& spec) {
  int64_t n = 1;
  for (auto d : spec.shape) n *= d;
  return n;
}

}  // namespace la::models

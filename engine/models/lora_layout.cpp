#include "engine/models/lora_layout.h"

namespace la::models {

std::vector<LoraTarget> lora_targets(const S2vDitConfig& c) {
  std::vector<LoraTarget> t;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "blocks." + std::to_string(i);
    for (const char* attn : {".self_attn.", ".cross_attn."})
      for (const char* n : {"q", "k", "v", "o"}) t.push_back({p + attn + n, c.dim, c.dim});
    t.push_back({p + ".ffn.0", c.dim, c.ffn_dim});
    t.push_back({p + ".ffn.2", c.ffn_dim, c.dim});
  }
  for (size_t j = 0; j < c.audio_inject_layers.size(); ++j)
    for (const char* n : {"q", "k", "v", "o"})
      t.push_back({"audio_injector.injector." + std::to_string(j) + "." + n, c.dim, c.dim});
  return t;
}

std::vector<TensorSpec> lora_tensor_specs(const S2vDitConfig& dit, int64_t rank) {
  std::vector<TensorSpec> s;
  for (const auto& t : lora_targets(dit)) {
    const std::string p = "base_model.model." + t.module;
    s.push_back({p + ".lora_A.default.weight", {rank, t.in_features}, Init::kMatrix});  // B small: the adapter perturbs W
    s.push_back({p + ".lora_B.default.weight", {t.out_features, rank}, Init::kSmall});
  }
  return s;
}

}  // namespace la::models

#include "engine/models/infer_config.h"

#include "engine/io/checkpoint_error.h"

namespace la::models {
namespace {

int64_t dim_of(const io::WeightStore& w, const std::string& key, int64_t d, int64_t rank) {
  const auto sizes = w.peek_shape(key);  // throws, naming the files, if absent
  if (static_cast<int64_t>(sizes.size()) != rank)
    throw io::CheckpointError(w.file_of(key), key, "has rank " + std::to_string(sizes.size()) + ", expected " +
                                                       std::to_string(rank));
  return sizes[d];
}

}  // namespace

WanVaeConfig infer_wan_vae_config(const io::WeightStore& w) {
  WanVaeConfig c;
  c.dim = dim_of(w, "encoder.conv1.weight", 0, 5);
  c.z_dim = dim_of(w, "conv2.weight", 0, 5);
  return c;
}

Umt5Config infer_umt5_config(const io::WeightStore& w) {
  Umt5Config c;
  c.vocab = dim_of(w, "token_embedding.weight", 0, 2);
  c.dim = dim_of(w, "token_embedding.weight", 1, 2);
  c.dim_attn = dim_of(w, "blocks.0.attn.q.weight", 0, 2);
  c.dim_ffn = dim_of(w, "blocks.0.ffn.fc1.weight", 0, 2);
  c.num_buckets = dim_of(w, "blocks.0.pos_embedding.embedding.weight", 0, 2);
  c.num_heads = dim_of(w, "blocks.0.pos_embedding.embedding.weight", 1, 2);
  c.num_layers = 0;
  while (w.contains("blocks." + std::to_string(c.num_layers) + ".norm1.weight")) ++c.num_layers;
  return c;
}

int64_t infer_lora_rank(const io::WeightStore& w) {
  for (const auto& k : w.keys())
    if (k.find(".lora_A.") != std::string::npos) return dim_of(w, k, 0, 2);
  throw io::CheckpointError(w.keys().empty() ? "(empty store)" : w.file_of(w.keys().front()),
                            "holds no lora_A tensor: not a LoRA file");
}

}  // namespace la::models

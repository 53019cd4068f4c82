#include "engine/models/umt5_layout.h"

#include "engine/io/json_config.h"

namespace la::models {

Umt5Config Umt5Config::from_json(const io::JsonConfig& j) {
  Umt5Config c;
  c.vocab = j.get_int("vocab");
  c.dim = j.get_int("dim");
  c.dim_attn = j.get_int("dim_attn");
  c.dim_ffn = j.get_int("dim_ffn");
  c.num_heads = j.get_int("num_heads");
  c.num_layers = j.get_int("num_layers");
  c.num_buckets = j.get_int("num_buckets");
  return c;
}

std::vector<TensorSpec> umt5_tensor_specs(const Umt5Config& c) {
  std::vector<TensorSpec> s;
  s.push_back({"token_embedding.weight", {c.vocab, c.dim}, Init::kEmbedding});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "blocks." + std::to_string(i);
    s.push_back({p + ".norm1.weight", {c.dim}, Init::kNormScale});
    add_linear(s, p + ".attn.q", {c.dim_attn, c.dim}, false);
    add_linear(s, p + ".attn.k", {c.dim_attn, c.dim}, false);
    add_linear(s, p + ".attn.v", {c.dim_attn, c.dim}, false);
    add_linear(s, p + ".attn.o", {c.dim, c.dim_attn}, false);
    s.push_back({p + ".norm2.weight", {c.dim}, Init::kNormScale});
    add_linear(s, p + ".ffn.gate.0", {c.dim_ffn, c.dim}, false);
    add_linear(s, p + ".ffn.fc1", {c.dim_ffn, c.dim}, false);
    add_linear(s, p + ".ffn.fc2", {c.dim, c.dim_ffn}, false);
    s.push_back({p + ".pos_embedding.embedding.weight", {c.num_buckets, c.num_heads}, Init::kSmall});
  }
  s.push_back({"norm.weight", {c.dim}, Init::kNormScale});
  return s;
}

}  // namespace la::models

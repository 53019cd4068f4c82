#include "engine/models/wav2vec2_layout.h"

#include <nlohmann/json.hpp>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_config.h"

namespace la::models {
namespace {

void layer_norm(std::vector<TensorSpec>& s, const std::string& p, int64_t c) {
  s.push_back({p + ".weight", {c}, Init::kNormScale});
  s.push_back({p + ".bias", {c}, Init::kSmall});
}

}  // namespace

Wav2Vec2Config Wav2Vec2Config::from_json(const io::JsonConfig& j) {
  Wav2Vec2Config c;
  c.hidden_size = j.get_int("hidden_size");
  c.num_hidden_layers = j.get_int("num_hidden_layers");
  c.num_attention_heads = j.get_int("num_attention_heads");
  c.intermediate_size = j.get_int("intermediate_size");
  c.conv_dim = j.get_int_list("conv_dim");
  c.conv_kernel = j.get_int_list("conv_kernel");
  c.conv_stride = j.get_int_list("conv_stride");
  c.conv_bias = j.get_bool("conv_bias", false);
  c.num_conv_pos_embeddings = j.get_int("num_conv_pos_embeddings");
  c.num_conv_pos_embedding_groups = j.get_int("num_conv_pos_embedding_groups");
  c.layer_norm_eps = j.get_double("layer_norm_eps", c.layer_norm_eps);
  c.vocab_size = j.get_int("vocab_size", c.vocab_size);
  if (j.get_string("feat_extract_norm", "group") != "layer" || !j.get_bool("do_stable_layer_norm", false))
    throw io::CheckpointError(j.path(), "only wav2vec2 with feat_extract_norm \"layer\" and do_stable_layer_norm true (XLSR-53 large) is supported");
  if (c.conv_dim.size() != c.conv_kernel.size() || c.conv_dim.size() != c.conv_stride.size() || c.conv_dim.empty())
    throw io::CheckpointError(j.path(), "conv_dim, conv_kernel and conv_stride must have the same non-zero length");
  if (c.hidden_size % c.num_attention_heads != 0 || c.hidden_size % c.num_conv_pos_embedding_groups != 0)
    throw io::CheckpointError(j.path(), "hidden_size must divide by num_attention_heads and num_conv_pos_embedding_groups");
  return c;
}

std::string Wav2Vec2Config::to_json() const {
  nlohmann::ordered_json j = {
      {"architectures", {"Wav2Vec2ForCTC"}}, {"model_type", "wav2vec2"},
      {"hidden_size", hidden_size}, {"num_hidden_layers", num_hidden_layers},
      {"num_attention_heads", num_attention_heads}, {"intermediate_size", intermediate_size},
      {"hidden_act", "gelu"}, {"feat_extract_activation", "gelu"}, {"feat_extract_norm", "layer"},
      {"do_stable_layer_norm", true}, {"conv_dim", conv_dim}, {"conv_kernel", conv_kernel},
      {"conv_stride", conv_stride}, {"conv_bias", conv_bias},
      {"num_conv_pos_embeddings", num_conv_pos_embeddings},
      {"num_conv_pos_embedding_groups", num_conv_pos_embedding_groups},
      {"layer_norm_eps", layer_norm_eps}, {"vocab_size", vocab_size},
      {"num_feat_extract_layers", conv_dim.size()}, {"pad_token_id", 0}};
  return j.dump(2) + "\n";
}

std::vector<TensorSpec> wav2vec2_tensor_specs(const Wav2Vec2Config& c) {
  std::vector<TensorSpec> s;
  const std::string fe = "wav2vec2.feature_extractor.conv_layers.";
  int64_t in = 1;
  for (size_t i = 0; i < c.conv_dim.size(); ++i) {
    const std::string p = fe + std::to_string(i);
    add_linear(s, p + ".conv", {c.conv_dim[i], in, c.conv_kernel[i]}, c.conv_bias);
    layer_norm(s, p + ".layer_norm", c.conv_dim[i]);
    in = c.conv_dim[i];
  }
  layer_norm(s, "wav2vec2.feature_projection.layer_norm", in);
  add_linear(s, "wav2vec2.feature_projection.projection", {c.hidden_size, in});
  const int64_t h = c.hidden_size, k = c.num_conv_pos_embeddings;
  s.push_back({"wav2vec2.encoder.pos_conv_embed.conv.bias", {h}, Init::kSmall});
  s.push_back({"wav2vec2.encoder.pos_conv_embed.conv.weight_g", {1, 1, k}, Init::kPositive});
  s.push_back({"wav2vec2.encoder.pos_conv_embed.conv.weight_v", {h, h / c.num_conv_pos_embedding_groups, k}, Init::kMatrix});
  layer_norm(s, "wav2vec2.encoder.layer_norm", h);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "wav2vec2.encoder.layers." + std::to_string(i);
    for (const char* n : {"q_proj", "k_proj", "v_proj", "out_proj"})
      add_linear(s, p + ".attention." + n, {h, h});
    layer_norm(s, p + ".layer_norm", h);
    add_linear(s, p + ".feed_forward.intermediate_dense", {c.intermediate_size, h});
    add_linear(s, p + ".feed_forward.output_dense", {h, c.intermediate_size});
    layer_norm(s, p + ".final_layer_norm", h);
  }
  s.push_back({"wav2vec2.masked_spec_embed", {h}, Init::kSmall});
  add_linear(s, "lm_head", {c.vocab_size, h});
  return s;
}

}  // namespace la::models

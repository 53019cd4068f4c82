#include "engine/models/wav2vec2/wav2vec2.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <filesystem>
#include <stdexcept>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_config.h"
#include "engine/io/tensor_view.h"
#include "engine/io/weight_store.h"
#include "engine/nn/attention.h"

namespace la::models {
namespace {

const std::string kPosConv = "wav2vec2.encoder.pos_conv_embed.conv.";

// The positional conv's weight from its weight-norm factors (dim=2: one norm
// per kernel tap over the other two dims). HF saves either weight_g/weight_v or,
// with torch's parametrizations, original0/original1.
at::Tensor pos_conv_weight(io::WeightStore& store, const Wav2Vec2Config& c) {
  const int64_t h = c.hidden_size, k = c.num_conv_pos_embeddings;
  const std::vector<int64_t> g_shape = {1, 1, k}, v_shape = {h, h / c.num_conv_pos_embedding_groups, k};
  const bool parametrized = store.contains(kPosConv + "parametrizations.weight.original0");
  const at::Tensor g = store.get(kPosConv + (parametrized ? "parametrizations.weight.original0" : "weight_g"), g_shape)
                           .to(at::kFloat);
  const at::Tensor v = store.get(kPosConv + (parametrized ? "parametrizations.weight.original1" : "weight_v"), v_shape)
                           .to(at::kFloat);
  return v * (g / at::linalg_vector_norm(v, 2, {0, 1}, /*keepdim=*/true));
}

}  // namespace

std::shared_ptr<const Wav2Vec2> Wav2Vec2::load(const std::string& dir, at::Device device, at::ScalarType dtype) {
  const auto cfg = Wav2Vec2Config::from_json(io::JsonConfig::load(dir + "/config.json"));
  const std::string st = dir + "/model.safetensors";
  auto store = io::WeightStore::open(std::filesystem::exists(st) ? st : dir + "/pytorch_model.bin");
  return from_store(store, cfg, device, dtype);
}

std::shared_ptr<const Wav2Vec2> Wav2Vec2::from_store(io::WeightStore& store, const Wav2Vec2Config& c,
                                                     at::Device device, at::ScalarType dtype) {
  // Every tensor of the layout must be present with its shape, the CTC head
  // included (unused here). masked_spec_embed is training-only and exists only
  // in configs with time/feature masking (the release has it).
  const std::string masked = "wav2vec2.masked_spec_embed";
  for (const auto& spec : wav2vec2_tensor_specs(c)) {
    if (spec.name.rfind(kPosConv + "weight_", 0) == 0) continue;  // read by pos_conv_weight
    if (spec.name == masked && !store.contains(masked)) continue;
    store.get(spec.name, spec.shape);
  }
  std::shared_ptr<Wav2Vec2> m(new Wav2Vec2());
  m->config_ = c;
  auto get = [&](const std::string& key) { return store.get_unchecked(key).to(device, dtype); };
  auto linear = [&](const std::string& p) { return nn::Conv{get(p + ".weight"), get(p + ".bias")}; };
  auto norm = [&](const std::string& p) { return LayerNorm{get(p + ".weight"), get(p + ".bias")}; };
  for (size_t i = 0; i < c.conv_dim.size(); ++i) {
    const std::string p = "wav2vec2.feature_extractor.conv_layers." + std::to_string(i);
    m->feature_convs_.push_back({get(p + ".conv.weight"), c.conv_bias ? get(p + ".conv.bias") : at::Tensor()});
    m->feature_norms_.push_back(norm(p + ".layer_norm"));
  }
  m->projection_norm_ = norm("wav2vec2.feature_projection.layer_norm");
  m->projection_ = linear("wav2vec2.feature_projection.projection");
  m->pos_conv_ = {pos_conv_weight(store, c).to(device, dtype), get(kPosConv + "bias")};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "wav2vec2.encoder.layers." + std::to_string(i);
    m->layers_.push_back({norm(p + ".layer_norm"), norm(p + ".final_layer_norm"), linear(p + ".attention.q_proj"),
                          linear(p + ".attention.k_proj"), linear(p + ".attention.v_proj"),
                          linear(p + ".attention.out_proj"), linear(p + ".feed_forward.intermediate_dense"),
                          linear(p + ".feed_forward.output_dense")});
  }
  m->final_norm_ = norm("wav2vec2.encoder.layer_norm");
  const auto unused = store.unused_keys();
  if (!unused.empty())
    throw io::CheckpointError(store.file_of(unused.front()), unused.front(),
                              "is not part of wav2vec2 (" + std::to_string(unused.size()) + " unexpected tensors)");
  return m;
}

int64_t Wav2Vec2::frame_count(int64_t samples) const {
  int64_t len = samples;
  for (size_t i = 0; i < config_.conv_kernel.size(); ++i) {
    if (len < config_.conv_kernel[i]) return 0;
    len = (len - config_.conv_kernel[i]) / config_.conv_stride[i] + 1;
  }
  return len;
}

at::Tensor Wav2Vec2::hidden_states(const at::Tensor& samples) const {
  c10::InferenceMode inference;
  if (samples.dim() != 2) throw std::invalid_argument("audio samples must be [B,N], got " + io::shape_string(samples.sizes()));
  if (frame_count(samples.size(1)) < 1)
    throw std::invalid_argument("audio of " + std::to_string(samples.size(1)) + " samples is shorter than one wav2vec2 frame (400 samples)");
  const double eps = config_.layer_norm_eps;
  auto layer_norm = [&](const at::Tensor& x, const LayerNorm& n) {
    return at::layer_norm(x, {x.size(-1)}, n.weight, n.bias, eps);
  };

  // Feature encoder: conv -> LayerNorm over channels -> exact GELU, 7 times.
  at::Tensor x = samples.to(device(), dtype()).unsqueeze(1);
  for (size_t i = 0; i < feature_convs_.size(); ++i) {
    x = at::conv1d(x, feature_convs_[i].weight, feature_convs_[i].bias, {config_.conv_stride[i]});
    x = at::gelu(at::layer_norm(x.transpose(1, 2), {x.size(1)}, feature_norms_[i].weight, feature_norms_[i].bias, 1e-5)
                     .transpose(1, 2));
  }
  x = x.transpose(1, 2);  // [B, T, conv_dim]
  x = at::linear(layer_norm(x, projection_norm_), projection_.weight, projection_.bias);

  // Grouped positional conv, "same" padding plus one extra frame for an even kernel, removed.
  const int64_t k = config_.num_conv_pos_embeddings;
  at::Tensor pos = at::conv1d(x.transpose(1, 2), pos_conv_.weight, pos_conv_.bias, {1}, {k / 2}, {1},
                              config_.num_conv_pos_embedding_groups);
  if (k % 2 == 0) pos = pos.slice(2, 0, pos.size(2) - 1);
  x = x + at::gelu(pos).transpose(1, 2);

  const int64_t b = x.size(0), t = x.size(1), heads = config_.num_attention_heads;
  const int64_t head_dim = config_.hidden_size / heads;
  std::vector<at::Tensor> states;
  states.reserve(layers_.size() + 1);
  for (const auto& l : layers_) {
    states.push_back(x);
    const at::Tensor h = layer_norm(x, l.attn_norm);
    auto split = [&](const nn::Conv& p) { return at::linear(h, p.weight, p.bias).view({b, t, heads, head_dim}).transpose(1, 2); };
    const at::Tensor a = nn::attention(split(l.q), split(l.k), split(l.v)).transpose(1, 2).reshape({b, t, -1});
    x = x + at::linear(a, l.out.weight, l.out.bias);
    const at::Tensor f = layer_norm(x, l.ffn_norm);
    x = x + at::linear(at::gelu(at::linear(f, l.ffn_in.weight, l.ffn_in.bias)), l.ffn_out.weight, l.ffn_out.bias);
  }
  states.push_back(layer_norm(x, final_norm_));
  return at::stack(states);
}

}  // namespace la::models

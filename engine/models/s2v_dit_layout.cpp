#include "engine/models/s2v_dit_layout.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_config.h"

namespace la::models {
namespace {

using Specs = std::vector<TensorSpec>;

std::vector<int64_t> conv_shape(int64_t out, int64_t in, const std::vector<int64_t>& k) {
  std::vector<int64_t> s = {out, in};
  s.insert(s.end(), k.begin(), k.end());
  return s;
}

// q, k, v, o projections with RMS q/k norms over the full width.
void attention(Specs& s, const std::string& p, int64_t dim, bool qk_norm) {
  for (const char* n : {"q", "k", "v", "o"}) add_linear(s, p + "." + n, {dim, dim});
  if (qk_norm) {
    s.push_back({p + ".norm_q.weight", {dim}, Init::kNormScale});
    s.push_back({p + ".norm_k.weight", {dim}, Init::kNormScale});
  }
}

void block(Specs& s, const S2vDitConfig& c, int64_t i) {
  const std::string p = "blocks." + std::to_string(i);
  s.push_back({p + ".modulation", {1, 6, c.dim}, Init::kSmall});
  attention(s, p + ".self_attn", c.dim, c.qk_norm);
  if (c.cross_attn_norm) {
    s.push_back({p + ".norm3.weight", {c.dim}, Init::kNormScale});
    s.push_back({p + ".norm3.bias", {c.dim}, Init::kSmall});
  }
  attention(s, p + ".cross_attn", c.dim, c.qk_norm);
  add_linear(s, p + ".ffn.0", {c.ffn_dim, c.dim});
  add_linear(s, p + ".ffn.2", {c.dim, c.ffn_dim});
}

void audio_encoder(Specs& s, const S2vDitConfig& c) {
  const std::string p = "casual_audio_encoder";  // sic, the release spells it so
  s.push_back({p + ".weights", {1, kAudioHiddenStates, 1, 1}, Init::kSmall});
  s.push_back({p + ".encoder.padding_tokens", {1, 1, 1, c.dim}, Init::kSmall});
  add_linear(s, p + ".encoder.conv1_local.conv", {c.dim, c.audio_dim, 3});
  add_linear(s, p + ".encoder.conv1_global.conv", {c.dim / 4, c.audio_dim, 3});
  add_linear(s, p + ".encoder.conv2.conv", {c.dim / 2, c.dim / 4, 3});
  add_linear(s, p + ".encoder.conv3.conv", {c.dim, c.dim / 2, 3});
  add_linear(s, p + ".encoder.final_linear", {c.dim, c.dim});
}

void audio_injector(Specs& s, const S2vDitConfig& c) {
  const auto n = static_cast<int64_t>(c.audio_inject_layers.size());
  for (int64_t j = 0; j < n; ++j)
    attention(s, "audio_injector.injector." + std::to_string(j), c.dim, true);
  if (c.enable_adain)
    for (int64_t j = 0; j < n; ++j)
      add_linear(s, "audio_injector.injector_adain_layers." + std::to_string(j) + ".linear", {2 * c.dim, c.dim});
}

}  // namespace

S2vDitConfig S2vDitConfig::from_json(const io::JsonConfig& j) {
  S2vDitConfig c;
  c.dim = j.get_int("dim");
  c.ffn_dim = j.get_int("ffn_dim");
  c.num_heads = j.get_int("num_heads");
  c.num_layers = j.get_int("num_layers");
  c.patch_size = j.get_int_list("patch_size");
  c.in_dim = j.get_int("in_dim");
  c.out_dim = j.get_int("out_dim");
  c.text_dim = j.get_int("text_dim");
  c.text_len = j.get_int("text_len");
  c.freq_dim = j.get_int("freq_dim");
  c.eps = j.get_double("eps");
  c.qk_norm = j.get_bool("qk_norm");
  c.cross_attn_norm = j.get_bool("cross_attn_norm");
  c.cond_dim = j.get_int("cond_dim");
  c.audio_dim = j.get_int("audio_dim");
  c.num_audio_token = j.get_int("num_audio_token");
  c.audio_inject_layers = j.get_int_list("audio_inject_layers");
  c.enable_adain = j.get_bool("enable_adain");
  c.adain_mode = j.get_string("adain_mode");
  c.enable_framepack = j.get_bool("enable_framepack");
  c.add_last_motion = j.get_bool("add_last_motion");
  c.zero_timestep = j.get_bool("zero_timestep");
  c.motion_token_num = j.get_int("motion_token_num", c.motion_token_num);
  c.local_attn_size = j.get_int("local_attn_size", c.local_attn_size);
  if (c.patch_size.size() != 3) throw io::CheckpointError(j.path(), "patch_size must have 3 entries");
  if (c.dim <= 0 || c.num_heads <= 0 || c.dim % c.num_heads != 0 || c.dim % 4 != 0)
    throw io::CheckpointError(j.path(), "dim " + std::to_string(c.dim) + " must be a positive multiple of 4 and of num_heads " +
                                            std::to_string(c.num_heads));
  for (auto l : c.audio_inject_layers)
    if (l < 0 || l >= c.num_layers)
      throw io::CheckpointError(j.path(), "audio_inject_layers names layer " + std::to_string(l) + " of " +
                                              std::to_string(c.num_layers));
  return c;
}

std::string S2vDitConfig::to_json() const {
  nlohmann::ordered_json j = {
      {"_class_name", "WanModel_S2V"},
      {"adain_mode", adain_mode}, {"add_last_motion", add_last_motion}, {"audio_dim", audio_dim},
      {"audio_inject_layers", audio_inject_layers}, {"cond_dim", cond_dim},
      {"cross_attn_norm", cross_attn_norm}, {"cross_attn_type", "t2v_cross_attn"}, {"dim", dim},
      {"enable_adain", enable_adain}, {"enable_framepack", enable_framepack},
      {"enable_motioner", false}, {"enable_tsm", false}, {"eps", eps}, {"ffn_dim", ffn_dim},
      {"framepack_drop_mode", "padd"}, {"freq_dim", freq_dim}, {"in_dim", in_dim},
      {"local_attn_size", local_attn_size}, {"model_type", "s2v"},
      {"motion_token_num", motion_token_num}, {"num_audio_token", num_audio_token},
      {"num_heads", num_heads}, {"num_layers", num_layers}, {"out_dim", out_dim},
      {"patch_size", patch_size}, {"qk_norm", qk_norm}, {"slide_motion_frames", false},
      {"text_dim", text_dim}, {"text_len", text_len}, {"trainable_token_pos_emb", false},
      {"window_size", {-1, -1}}, {"zero_init", true}, {"zero_timestep", zero_timestep}};
  return j.dump(2) + "\n";
}

std::vector<TensorSpec> s2v_dit_tensor_specs(const S2vDitConfig& c) {
  Specs s;
  add_linear(s, "patch_embedding", conv_shape(c.dim, c.in_dim, c.patch_size));
  add_linear(s, "text_embedding.0", {c.dim, c.text_dim});
  add_linear(s, "text_embedding.2", {c.dim, c.dim});
  add_linear(s, "time_embedding.0", {c.dim, c.freq_dim});
  add_linear(s, "time_embedding.2", {c.dim, c.dim});
  add_linear(s, "time_projection.1", {6 * c.dim, c.dim});
  for (int64_t i = 0; i < c.num_layers; ++i) block(s, c, i);
  s.push_back({"head.modulation", {1, 2, c.dim}, Init::kSmall});
  const int64_t patch_volume = c.patch_size[0] * c.patch_size[1] * c.patch_size[2];
  add_linear(s, "head.head", {c.out_dim * patch_volume, c.dim});
  add_linear(s, "cond_encoder", conv_shape(c.dim, c.cond_dim, c.patch_size));
  audio_encoder(s, c);
  audio_injector(s, c);
  s.push_back({"trainable_cond_mask.weight", {3, c.dim}, Init::kSmall});
  if (c.enable_framepack) {
    add_linear(s, "frame_packer.proj", conv_shape(c.dim, c.in_dim, {1, 2, 2}));
    add_linear(s, "frame_packer.proj_2x", conv_shape(c.dim, c.in_dim, {2, 4, 4}));
    add_linear(s, "frame_packer.proj_4x", conv_shape(c.dim, c.in_dim, {4, 8, 8}));
  }
  return s;
}

}  // namespace la::models

namespace la::models {
namespace {

// The number after `prefix` in `name` ("blocks.12.ffn.0.weight" -> 12), or -1.
int64_t index_after(const std::string& name, const std::string& prefix) {
  if (name.rfind(prefix, 0) != 0) return -1;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return -1;
  int64_t n = 0;
  for (size_t i = prefix.size(); i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

}  // namespace

bool s2v_dit_tensor_in_range(const std::string& name, const S2vDitConfig& cfg, const DitLayerRange& range) {
  const int64_t end = range.end_of(cfg);
  if (range.begin < 0 || range.begin >= end || end > cfg.num_layers)
    throw std::invalid_argument("DiT layer range [" + std::to_string(range.begin) + ", " + std::to_string(end) +
                                ") is not a non-empty part of its " + std::to_string(cfg.num_layers) + " blocks");
  auto in = [&](int64_t layer) { return layer >= range.begin && layer < end; };
  if (const int64_t i = index_after(name, "blocks."); i >= 0) return in(i);
  for (const char* prefix : {"audio_injector.injector.", "audio_injector.injector_adain_layers."}) {
    const int64_t j = index_after(name, prefix);
    if (j >= 0) return j < static_cast<int64_t>(cfg.audio_inject_layers.size()) && in(cfg.audio_inject_layers[j]);
  }
  if (name.rfind("head.", 0) == 0) return end == cfg.num_layers;
  return range.begin == 0;  // the stem
}

}  // namespace la::models

// Configuration (Wan2.2-S2V-14B/config.json) and checkpoint key layout of the
// causal S2V DiT. Every hyper-parameter comes from the config, so the tiny and
// the 14B model share one code path.
#pragma once

#include <string>
#include <vector>

#include "engine/models/tensor_spec.h"

namespace la::io { class JsonConfig; }

namespace la::models {

// wav2vec2-large gives 25 hidden states (input + 24 layers); the DiT's audio
// encoder learns one weight per state ("casual_audio_encoder.weights").
constexpr int64_t kAudioHiddenStates = 25;

struct S2vDitConfig {
  int64_t dim = 5120;
  int64_t ffn_dim = 13824;
  int64_t num_heads = 40;
  int64_t num_layers = 40;
  std::vector<int64_t> patch_size = {1, 2, 2};
  int64_t in_dim = 16;
  int64_t out_dim = 16;
  int64_t text_dim = 4096;
  int64_t text_len = 512;
  int64_t freq_dim = 256;
  double eps = 1e-6;
  bool qk_norm = true;
  bool cross_attn_norm = true;
  int64_t cond_dim = 16;
  int64_t audio_dim = 1024;
  int64_t num_audio_token = 4;
  std::vector<int64_t> audio_inject_layers = {0, 4, 8, 12, 16, 20, 24, 27, 30, 33, 36, 39};
  bool enable_adain = true;
  std::string adain_mode = "attn_norm";
  bool enable_framepack = true;
  bool add_last_motion = true;
  bool zero_timestep = true;
  int64_t motion_token_num = 1024;
  int64_t local_attn_size = -1;

  // Reads every key above from config.json (all are required: a config that
  // lacks one is not an S2V DiT config). Throws CheckpointError.
  static S2vDitConfig from_json(const io::JsonConfig& cfg);
  // config.json text in the diffusers layout of the release.
  std::string to_json() const;
};

std::vector<TensorSpec> s2v_dit_tensor_specs(const S2vDitConfig& cfg);

// A contiguous range of transformer blocks [begin, end): the part of the DiT
// one pipeline stage holds (DESIGN §6, dit-split=layers). The stage with block
// 0 also holds the stem (patch, pose, frame-pack, text, time embeddings and
// the audio encoder), the stage with the last block the head, and every stage
// the audio injectors that follow its blocks. end = -1 means num_layers.
struct DitLayerRange {
  int64_t begin = 0;
  int64_t end = -1;
  int64_t end_of(const S2vDitConfig& cfg) const { return end < 0 ? cfg.num_layers : end; }
  bool whole(const S2vDitConfig& cfg) const { return begin == 0 && end_of(cfg) == cfg.num_layers; }
};

// Whether checkpoint tensor `name` belongs to the part `range` of the DiT.
// Throws std::invalid_argument for a range outside the model.
bool s2v_dit_tensor_in_range(const std::string& name, const S2vDitConfig& cfg, const DitLayerRange& range);

}  // namespace la::models

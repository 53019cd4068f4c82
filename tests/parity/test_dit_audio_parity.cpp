// The DiT's per-block audio tokens (casual_audio_encoder on the block's frames
// with the 73-frame prefix, motion part dropped) against every recorded call
// of dit_io (callNN.dbg.audio_emb_global / merged_audio_emb).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "engine/io/safetensors_file.h"
#include "engine/io/weight_store.h"
#include "engine/models/s2v_dit/audio_encoder.h"
#include "engine/models/s2v_dit_layout.h"
#include "tests/parity/compare.h"
#include "tests/parity/parity_dir.h"

using namespace la;

TEST(DitAudioParity, BlockAudioTokensOfEveryCall) {
  const std::string weights = test::parity_file("dit_weights.safetensors");
  const auto dit = models::S2vDitConfig::from_json(test::fixture_config(weights));
  auto store = io::WeightStore::open(weights);
  const auto enc = models::CausalAudioEncoder::from_store(
      store, "casual_audio_encoder.", {dit.audio_dim, dit.dim, dit.num_audio_token, models::kAudioHiddenStates}, at::kCPU);

  const io::SafetensorsFile f(test::parity_file("dit_io.safetensors"));
  const auto io = f.tensors();
  const auto pipeline = nlohmann::json::parse(f.metadata().at("pipeline"));
  const int64_t motion_frames = pipeline.at("motion_frames")[0], motion_latent = pipeline.at("motion_frames")[1];
  const at::Tensor& audio = io.at("in.audio_emb");
  int checked = 0;
  for (const auto& call : nlohmann::json::parse(f.metadata().at("calls"))) {
    char name[16];
    std::snprintf(name, sizeof name, "call%02d", call.at("index").get<int>());
    const std::string p = std::string(name) + ".dbg.";
    if (!io.count(p + "merged_audio_emb")) continue;
    const int64_t a = call.at("audio_frames")[0], b = call.at("audio_frames")[1];
    const auto [global, local] = enc.block_tokens(audio.slice(3, a, b), motion_frames, motion_latent);
    EXPECT_TRUE(test::close_rel(global, io.at(p + "audio_emb_global"), 1e-4, p + "audio_emb_global"));
    EXPECT_TRUE(test::close_rel(local, io.at(p + "merged_audio_emb"), 1e-4, p + "merged_audio_emb"));
    ++checked;
  }
  EXPECT_GE(checked, 4);
}

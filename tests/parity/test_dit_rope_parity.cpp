// The DiT's RoPE tables against the ones the reference used in every recorded
// call of dit_io (callNN.dbg.rope_*): the sink's reference and cond tables,
// each block's noisy-token table, and the rolling reference position.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "engine/io/safetensors_file.h"
#include "engine/models/s2v_dit/rope.h"
#include "tests/parity/compare.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

void expect_table(const models::RopeTable& got, const std::map<std::string, at::Tensor>& io, const std::string& name) {
  // The reference's tables are fp16 values; ours must be the same values.
  EXPECT_TRUE(test::close_abs(got.cos, io.at(name + ".cos"), 0.0, name + ".cos"));
  EXPECT_TRUE(test::close_abs(got.sin, io.at(name + ".sin"), 0.0, name + ".sin"));
}

}  // namespace

TEST(DitRopeParity, EveryRecordedTable) {
  const std::string file = test::parity_file("dit_io.safetensors");
  const io::SafetensorsFile f(file);
  const auto io = f.tensors();
  const auto pipeline = nlohmann::json::parse(f.metadata().at("pipeline"));
  const auto cfg = test::fixture_config(file);
  const int64_t head_dim = cfg.get_int("dim") / cfg.get_int("num_heads");
  ASSERT_EQ(pipeline.at("head_dim").get<int64_t>(), head_dim);
  const int64_t lat_h = pipeline.at("lat_hw")[0], lat_w = pipeline.at("lat_hw")[1];
  const int64_t grid_h = lat_h / 2, grid_w = lat_w / 2;
  const int64_t frames_per_block = pipeline.at("num_frames_per_block");
  const auto sink = models::sink_groups(lat_h, lat_w);

  int checked = 0;
  for (const auto& call : nlohmann::json::parse(f.metadata().at("calls"))) {
    char name[16];
    std::snprintf(name, sizeof name, "call%02d", call.at("index").get<int>());
    const std::string p = std::string(name) + ".dbg.rope_";
    if (io.count(p + "sink_ref.cos")) {
      expect_table(models::rope_table({sink[0]}, head_dim), io, p + "sink_ref");
      expect_table(models::rope_table(sink, head_dim), io, p + "sink_all");
      checked += 2;
    }
    if (io.count(p + "noisy.cos")) {
      const int64_t n = call.at("noisy_rope_start_frame");
      expect_table(models::rope_table(models::noisy_block_groups(n, frames_per_block, grid_h, grid_w), head_dim), io,
                   p + "noisy");
      // Rolling sink: the reference frame moves to max(30, n + rd); motion stays.
      const int64_t rd = call.at("relative_dist");
      const int64_t k = std::max<int64_t>(0, n - (30 - rd));
      EXPECT_EQ(k, call.at("cond_rollout_frames").get<int64_t>()) << name;
      expect_table(models::rope_table(models::shift_frames(sink, k, 1), head_dim), io, p + "cond");
      checked += 2;
    }
  }
  EXPECT_GE(checked, 10);
}

TEST(DitRope, PositionsPastTheReferenceTableWork) {
  // The reference's table ends at 45,000 positions (about 2 hours); ours has no end.
  const auto far = models::rope_table(models::noisy_block_groups(100000, 3, 2, 2), 16);
  EXPECT_EQ(far.cos.size(0), 12);
  EXPECT_TRUE(at::isfinite(far.cos).all().item<bool>());
  EXPECT_LE(far.cos.abs().max().item<float>(), 1.0f);
  // Inside the range the angle is p * inv_freq: position 44999 matches a direct evaluation.
  const auto near = models::rope_table(models::noisy_block_groups(44999, 1, 1, 1), 16);
  EXPECT_FLOAT_EQ(near.cos[0][0].item<float>(), static_cast<float>(static_cast<at::Half>(std::cos(44999.0))));
}

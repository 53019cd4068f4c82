// parity-audio: the DiT's causal audio encoder, the 50->30 Hz resampling, the
// sample-index and the per-frame bucket functions against audio_io.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "engine/audio/frame_alignment.h"
#include "engine/io/json_config.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/weight_store.h"
#include "engine/models/s2v_dit/audio_encoder.h"
#include "tests/common/figure.h"
#include "tests/parity/compare.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

constexpr double kRel = 1e-4;  // README: max|d| <= 1e-4 * max(1, max|ref|)

class AudioParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const io::SafetensorsFile f(test::parity_file("audio_io.safetensors"));
    io_ = new std::map<std::string, at::Tensor>(f.tensors());
    cases_ = new nlohmann::json(nlohmann::json::parse(f.metadata().at("cases")));
  }
  static void TearDownTestSuite() {
    delete io_;
    delete cases_;
  }
  static const at::Tensor& t(const std::string& name) { return io_->at(name); }
  static bool has(const std::string& name) { return io_->count(name) != 0; }
  static std::map<std::string, at::Tensor>* io_;
  static nlohmann::json* cases_;
};
std::map<std::string, at::Tensor>* AudioParity::io_ = nullptr;
nlohmann::json* AudioParity::cases_ = nullptr;

}  // namespace

TEST_F(AudioParity, CausalAudioEncoder) {
  const std::string weights = test::parity_file("audio_weights.safetensors");
  const auto cfg = test::fixture_config(weights);
  ASSERT_TRUE(cfg.get_bool("need_global"));
  const models::AudioEncoderConfig c{cfg.get_int("dim"), cfg.get_int("out_dim"), cfg.get_int("num_token"),
                                     cfg.get_int("num_layers")};
  auto store = io::WeightStore::open(weights);
  const auto enc = models::CausalAudioEncoder::from_store(store, "", c, at::kCPU);
  EXPECT_TRUE(store.unused_keys().empty());
  int cases = 0;
  double worst = 0;
  for (int k = 0; has("enc" + std::to_string(k) + ".features"); ++k, ++cases) {
    const std::string p = "enc" + std::to_string(k);
    const auto [global, local] = enc.forward(t(p + ".features"));
    EXPECT_TRUE(test::close_rel(global, t(p + ".out_global"), kRel, p + ".out_global"));
    worst = std::max(worst, test::last_diff().max_abs);
    EXPECT_TRUE(test::close_rel(local, t(p + ".out_local"), kRel, p + ".out_local"));
    worst = std::max(worst, test::last_diff().max_abs);
  }
  la::test::record_doc_figure("audio.encoder.max_abs", worst);  // docs/text-and-audio.md
  EXPECT_GE(cases, 1);
  EXPECT_THROW(enc.forward(at::zeros({1, 24, c.audio_dim, 8})), std::invalid_argument);
}

TEST_F(AudioParity, Resample50To30Hz) {
  int cases = 0;
  double worst = 0;
  for (int k = 0; has("interp" + std::to_string(k) + ".in"); ++k, ++cases) {
    const std::string p = "interp" + std::to_string(k);
    EXPECT_TRUE(test::close_rel(audio::resample_linear(t(p + ".in"), 50, 30), t(p + ".out"), kRel, p));
    worst = std::max(worst, test::last_diff().max_abs);
  }
  EXPECT_GE(cases, 1);
  const at::Tensor& want = t("interp_len.out");
  EXPECT_TRUE(test::close_rel(audio::resample_linear(t("interp_len.in"), 50, 30, want.size(1)), want, kRel, "interp_len"));
  worst = std::max(worst, test::last_diff().max_abs);
  la::test::record_doc_figure("audio.resample.max_abs", worst);
}

TEST_F(AudioParity, SampleIndices) {
  const auto& list = cases_->at("sample_indices");
  for (size_t k = 0; k < list.size(); ++k) {
    const auto& c = list[k];
    const auto got = audio::sample_indices(c.at("original_fps"), c.at("total_frames"), c.at("target_fps"),
                                           c.at("num_sample"), c.at("fixed_start"));
    EXPECT_TRUE(at::equal(at::tensor(got, at::kLong), t("sample_indices" + std::to_string(k)))) << "case " << k;
  }
  EXPECT_THROW(audio::sample_indices(30, 10, 25, 100, 0), std::invalid_argument);
}

TEST_F(AudioParity, BucketsPerVideoFrame) {
  const auto& list = cases_->at("bucket");
  for (size_t k = 0; k < list.size(); ++k) {
    const auto& c = list[k];
    const std::string p = "bucket" + std::to_string(k);
    const auto b = audio::bucket_by_frame(t(p + ".audio_feat"), c.at("fps"), c.at("batch_frames"), c.at("m"),
                                          c.at("video_rate"));
    EXPECT_TRUE(at::equal(b.buckets, t(p + ".bucket"))) << p;
    EXPECT_EQ(b.num_repeat, t(p + ".num_repeat").item<int64_t>()) << p;
    EXPECT_EQ(b.num_repeat, c.at("num_repeat").get<int64_t>()) << p;
    EXPECT_TRUE(at::equal(b.buckets.unsqueeze(0).permute({0, 2, 3, 1}), t(p + ".audio_emb"))) << p;
  }
}

// parity-text-audio-bf16: wav2vec2 and the umT5 encoder in bf16 (how the reference
// and every GPU run them: bf16 weights and activations, the bf16 waveform,
// the T5 norms' variance in fp32) against the same models in fp32 on the
// CPU. wav2vec2: the HF golden's tiny model and signals
// (tests/fixtures/wav2vec2), all 25 hidden states and the offline features
// (normalise -> wav2vec2 -> 50->30 Hz -> buckets); umT5: the parity
// fixture's weights and token ids (t5_weights / t5_io), the real tokens of
// each sequence. The bf16 side runs on $LA_TEST_DEVICE (default cpu).
// Bounds: 2x the error measured on the CPU (docs/text-and-audio.md).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cstdlib>

#include "engine/audio/audio_features.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/weight_store.h"
#include "engine/models/umt5/encoder.h"
#include "engine/models/wav2vec2/wav2vec2.h"
#include "tests/parity/bf16_figures.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

// Bounds (measured on the CPU, x2; see docs/text-and-audio.md).
constexpr double kW2vRelL2 = 2 * 1.5e-2, kW2vMaxOverRms = 2 * 8.0e-2;
constexpr double kFeaturesRelL2 = 2 * 1.3e-2, kFeaturesMaxOverRms = 2 * 7.5e-2;
constexpr double kT5RelL2 = 2 * 7.1e-3, kT5MaxOverRms = 2 * 3.4e-2;

std::string wav2vec2_dir() {
  const char* src = std::getenv("LA_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/fixtures/wav2vec2";
}

}  // namespace

TEST(Wav2Vec2Bf16, HiddenStatesStayNearFp32) {
  const auto fp32 = models::Wav2Vec2::load(wav2vec2_dir(), at::kCPU, at::kFloat);
  const auto bf16 = models::Wav2Vec2::load(wav2vec2_dir(), test::bf16_test_device(), at::kBFloat16);
  EXPECT_EQ(bf16->dtype(), at::kBFloat16);
  const auto golden = io::SafetensorsFile(wav2vec2_dir() + "/golden.safetensors").tensors();
  test::ErrorFigures all;
  int cases = 0;
  for (int k = 0; golden.count("case" + std::to_string(k) + ".samples"); ++k, ++cases) {
    const at::Tensor samples = golden.at("case" + std::to_string(k) + ".samples");
    const at::Tensor ref = fp32->hidden_states(samples), got = bf16->hidden_states(samples).to(at::kCPU, at::kFloat);
    ASSERT_EQ(got.sizes(), ref.sizes());
    test::ErrorFigures c;
    for (int64_t l = 0; l < ref.size(0); ++l) c = test::worst(c, test::error_figures(got[l], ref[l]));
    std::printf("[bf16] wav2vec2 case %d (%ld samples), worst of %ld states: rel L2 %.3g, max|d|/rms %.3g\n", k,
                static_cast<long>(samples.size(1)), static_cast<long>(ref.size(0)), c.rel_l2, c.max_over_rms);
    all = test::worst(all, c);
  }
  EXPECT_EQ(cases, 2);
  test::expect_within("wav2vec2.bf16.hidden_states", all, kW2vRelL2, kW2vMaxOverRms);
}

TEST(Wav2Vec2Bf16, OfflineFeaturesStayNearFp32) {
  const auto fp32 = models::Wav2Vec2::load(wav2vec2_dir(), at::kCPU, at::kFloat);
  const auto bf16 = models::Wav2Vec2::load(wav2vec2_dir(), test::bf16_test_device(), at::kBFloat16);
  const auto golden = io::SafetensorsFile(wav2vec2_dir() + "/golden.safetensors").tensors();
  test::ErrorFigures all;
  for (int k = 0; k < 2; ++k) {
    // Un-normalised, as audio arrives (the golden's signals are normalised already).
    const at::Tensor samples = golden.at("case" + std::to_string(k) + ".samples")[0] * 0.25 + 0.02;
    const at::Tensor ref = audio::offline_features(*fp32, samples);
    const at::Tensor got = audio::offline_features(*bf16, samples).to(at::kCPU, at::kFloat);
    EXPECT_EQ(got.scalar_type(), at::kFloat);
    // Compare the frames that hold audio (the rest are zeros on both sides).
    const int64_t real = ref.abs().sum(at::IntArrayRef{0, 1}).gt(0).sum().item<int64_t>();
    ASSERT_GT(real, 0);
    all = test::worst(all, test::error_figures(got.narrow(2, 0, real), ref.narrow(2, 0, real)));
    EXPECT_EQ(got.narrow(2, real, got.size(2) - real).abs().sum().item<double>(), 0.0);
  }
  test::expect_within("wav2vec2.bf16.offline_features", all, kFeaturesRelL2, kFeaturesMaxOverRms);
}

TEST(Umt5Bf16, HiddenStatesStayNearFp32) {
  const std::string weights = test::parity_file("t5_weights.safetensors");
  const auto cfg = models::Umt5Config::from_json(test::fixture_config(weights));
  auto s32 = io::WeightStore::open(weights), s16 = io::WeightStore::open(weights);
  const auto fp32 = models::Umt5Encoder::from_store(s32, cfg, at::kCPU, at::kFloat);
  const auto bf16 = models::Umt5Encoder::from_store(s16, cfg, test::bf16_test_device(), at::kBFloat16);
  const auto io = io::SafetensorsFile(test::parity_file("t5_io.safetensors")).tensors();
  const at::Tensor ids = io.at("ids"), mask = io.at("mask"), lens = io.at("seq_lens");
  const at::Tensor ref = fp32->forward(ids, mask), got = bf16->forward(ids, mask).to(at::kCPU, at::kFloat);
  test::ErrorFigures all;
  // The pipeline keeps each sequence's real tokens; padded rows are never used.
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const int64_t n = lens[b].item<int64_t>();
    all = test::worst(all, test::error_figures(got[b].narrow(0, 0, n), ref[b].narrow(0, 0, n)));
  }
  const at::Tensor nomask = io.at("nomask.ids");
  all = test::worst(all, test::error_figures(bf16->forward(nomask).to(at::kCPU, at::kFloat), fp32->forward(nomask)));
  test::expect_within("umt5.bf16.hidden", all, kT5RelL2, kT5MaxOverRms);
}

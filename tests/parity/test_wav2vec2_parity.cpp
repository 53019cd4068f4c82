// parity-wav2vec2: all 25 hidden states against HF transformers' Wav2Vec2
// (golden outputs and tiny weights in tests/fixtures/wav2vec2/, made by
// make_golden.py there), plus first-principles checks.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cstdlib>

#include "engine/io/safetensors_file.h"
#include "engine/models/wav2vec2/wav2vec2.h"
#include "tests/parity/compare.h"

using namespace la;

namespace {

std::string fixture_dir() {
  const char* src = std::getenv("LA_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/fixtures/wav2vec2";
}

}  // namespace

TEST(Wav2Vec2Parity, AllHiddenStatesMatchTransformers) {
  const auto w2v = models::Wav2Vec2::load(fixture_dir(), at::kCPU, at::kFloat);
  const auto golden = io::SafetensorsFile(fixture_dir() + "/golden.safetensors").tensors();
  int cases = 0;
  for (int k = 0; golden.count("case" + std::to_string(k) + ".samples"); ++k, ++cases) {
    const std::string p = "case" + std::to_string(k);
    const at::Tensor samples = golden.at(p + ".samples");
    const at::Tensor want = golden.at(p + ".hidden_states");
    EXPECT_EQ(w2v->frame_count(samples.size(1)), want.size(2));
    const at::Tensor got = w2v->hidden_states(samples);
    ASSERT_EQ(got.sizes(), want.sizes());
    for (int64_t l = 0; l < want.size(0); ++l)
      EXPECT_TRUE(test::close_rel(got[l], want[l], 1e-4, p + ".hidden_state" + std::to_string(l)));
  }
  EXPECT_EQ(cases, 2);
}

TEST(Wav2Vec2, FrameCountFormula) {
  const auto w2v = models::Wav2Vec2::load(fixture_dir(), at::kCPU, at::kFloat);
  EXPECT_EQ(w2v->frame_count(16000), 49);  // 1 s at 16 kHz, as the reference spec states
  EXPECT_EQ(w2v->frame_count(400), 1);     // the receptive field
  EXPECT_EQ(w2v->frame_count(399), 0);
  EXPECT_EQ(w2v->frame_count(7680), 23);   // one 0.48 s block
  EXPECT_THROW(w2v->hidden_states(at::zeros({1, 399})), std::invalid_argument);
  EXPECT_THROW(w2v->hidden_states(at::zeros({399})), std::invalid_argument);
}

TEST(Wav2Vec2, AttentionIsUnmaskedAcrossTheWholeUtterance) {
  // Changing the last samples changes the first frames' deep states: every
  // frame attends to every other (the reason the reference is non-causal).
  const auto w2v = models::Wav2Vec2::load(fixture_dir(), at::kCPU, at::kFloat);
  at::manual_seed(5);
  // 3 s = 149 frames; the change is past frame 125, beyond the positional
  // conv's reach (64 frames) from frame 0.
  at::Tensor a = at::randn({1, 48000});
  at::Tensor b = a.clone();
  b.slice(1, 44000).mul_(-1);
  const at::Tensor ha = w2v->hidden_states(a), hb = w2v->hidden_states(b);
  EXPECT_TRUE(at::equal(ha[0].select(1, 0), hb[0].select(1, 0))) << "frame 0 before any attention sees only its neighbourhood";
  EXPECT_FALSE(at::allclose(ha[24].select(1, 0), hb[24].select(1, 0))) << "last state of frame 0 sees the end";
}

// GenerationSession on the tiny checkpoint (random weights, LoRA merged):
// determinism per seed, flat cache memory, positions past the reference's
// 45,000-row RoPE table, prompt/image changes at block boundaries, reset.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/session/generation_session.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"

using namespace la;

namespace {

constexpr int64_t kH = 8, kW = 12;  // latent size: 64x96 pixels

class Session : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_EQ(test::make_tiny_checkpoint(dir_->path()), 0) << "la-mkcheckpoint ($LA_MKCHECKPOINT)";
    dit_ = models::S2vDit::load((dir_->path() / "Wan2.2-S2V-14B").string(),
                                (dir_->path() / "LiveAvatar" / "liveavatar.safetensors").string(), at::kCPU,
                                at::kFloat);
  }
  static void TearDownTestSuite() {
    dit_.reset();
    delete dir_;
  }

  // Seeded inputs, so every test sees the same prompt, image and audio.
  static at::Tensor input(std::vector<int64_t> shape, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
  }
  static at::Tensor prompt(uint64_t seed = 1) { return input({5, dit_->config().text_dim}, seed); }
  static at::Tensor audio(int64_t block) { return input({25, dit_->config().audio_dim, 12}, 1000 + block); }
  static session::GenerationSession make(session::SessionOptions o = {}) {
    session::GenerationSession s(dit_, kH, kW, o);
    s.set_prompt(prompt());
    s.set_reference(input({16, 1, kH, kW}, 2), input({16, 19, kH, kW}, 3));
    return s;
  }
  static std::vector<at::Tensor> run(session::GenerationSession& s, int64_t blocks) {
    std::vector<at::Tensor> out;
    for (int64_t b = 0; b < blocks; ++b) out.push_back(s.next_block(audio(s.blocks_done())));
    return out;
  }

  static test::TempDir* dir_;
  static std::shared_ptr<const models::S2vDit> dit_;
};
test::TempDir* Session::dir_ = nullptr;
std::shared_ptr<const models::S2vDit> Session::dit_;

bool all_equal(const std::vector<at::Tensor>& a, const std::vector<at::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!at::equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

TEST_F(Session, BlockShapeAndFiniteValues) {
  auto s = make();
  const at::Tensor x = s.next_block(audio(0));
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{16, 3, kH, kW}));
  EXPECT_TRUE(at::isfinite(x).all().item<bool>());
  EXPECT_EQ(s.blocks_done(), 1);
}

TEST_F(Session, SameSeedGivesBitIdenticalLatentsAndAnotherSeedDiffers) {
  session::SessionOptions o;
  o.seed = 7;
  auto a = make(o), b = make(o);
  const auto xa = run(a, 6), xb = run(b, 6);  // 6 blocks: past the first clip and its sink refresh
  EXPECT_TRUE(all_equal(xa, xb));
  o.seed = 8;
  auto c = make(o);
  const auto xc = run(c, 6);
  for (size_t i = 0; i < xa.size(); ++i) EXPECT_FALSE(at::equal(xa[i], xc[i])) << "block " << i;
}

TEST_F(Session, CacheMemoryStopsGrowingOnceTheWindowIsFull) {
  auto s = make();
  run(s, 1);
  const int64_t after_one = s.cache_bytes();
  run(s, 9);  // 10 blocks: the 4-block ring has wrapped twice
  EXPECT_EQ(s.cache_bytes(), after_one);
  // 4 steps x 3 layers x (K + V) x 4 blocks x 3 frames x 24 tokens x 64 floats, plus the sink.
  const int64_t ring = 4LL * 3 * 2 * 4 * 3 * (kH / 2) * (kW / 2) * 64 * 4;
  EXPECT_GE(after_one, ring);
  EXPECT_LT(after_one, ring * 2);
}

TEST_F(Session, PositionsBeyondTheReferenceTableWork) {
  // The reference's RoPE table ends at 45,000 positions (about 2 hours of video).
  session::SessionOptions o;
  o.first_frame = 45000 - 3;  // crosses the end within the first two blocks
  auto s = make(o);
  for (const auto& x : run(s, 3)) EXPECT_TRUE(at::isfinite(x).all().item<bool>());
  o.first_frame = 300000;  // ~3.3 hours in
  auto far = make(o);
  const auto xf = run(far, 2);
  for (const auto& x : xf) EXPECT_TRUE(at::isfinite(x).all().item<bool>());
  auto near = make();  // the same inputs at position 0 differ: positions matter
  EXPECT_FALSE(at::equal(run(near, 1)[0], xf[0]));
}

TEST_F(Session, PromptChangeAppliesAtTheNextBlock) {
  auto a = make(), b = make();
  const auto first_a = run(a, 2), first_b = run(b, 2);
  EXPECT_TRUE(all_equal(first_a, first_b));
  b.set_prompt(prompt(99));
  EXPECT_FALSE(at::equal(run(a, 1)[0], run(b, 1)[0]));
}

TEST_F(Session, ImageChangeAppliesAtTheNextBlock) {
  auto a = make(), b = make();
  run(a, 1);
  run(b, 1);
  b.set_reference(input({16, 1, kH, kW}, 50), input({16, 19, kH, kW}, 51));
  EXPECT_FALSE(at::equal(run(a, 1)[0], run(b, 1)[0]));
}

TEST_F(Session, SinkRefreshAfterTheFirstClipChangesLaterBlocksOnly) {
  session::SessionOptions off;
  off.refresh_sink_after_first_clip = false;
  auto a = make(), b = make(off);
  const auto xa = run(a, 5), xb = run(b, 5);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(at::equal(xa[i], xb[i])) << "block " << i;
  EXPECT_FALSE(at::equal(xa[4], xb[4]));
}

TEST_F(Session, FixedRdDiffersFromDrawnRdAndIsDeterministic) {
  session::SessionOptions fixed;
  fixed.fixed_rd = 30;
  auto a = make(fixed), b = make(fixed), c = make();
  const auto xa = run(a, 3), xb = run(b, 3), xc = run(c, 3);
  EXPECT_TRUE(all_equal(xa, xb));
  EXPECT_FALSE(at::equal(xa[2], xc[2]));  // block 2 (n = 6) rolls the sink when rd > 24
}

TEST_F(Session, ResetStartsTheSameStreamAgain) {
  auto s = make();
  const auto first = run(s, 5);
  s.reset();
  EXPECT_EQ(s.blocks_done(), 0);
  EXPECT_TRUE(all_equal(run(s, 5), first));
}

TEST_F(Session, StepsOtherThanFourWork) {
  session::SessionOptions o;
  o.steps = 2;
  auto s = make(o);
  const at::Tensor x = s.next_block(audio(0));
  EXPECT_TRUE(at::isfinite(x).all().item<bool>());
  EXPECT_FALSE(at::equal(x, make().next_block(audio(0))));
}

// Interactive changes (DESIGN.md §5) at every block position of the first three
// clips: inside the first clip, at the clip boundaries where the sink is
// refreshed, and later. The stream goes on for several blocks (past the next
// clip boundary) without an error; the blocks before the change are those of
// the unchanged stream and the change shows from its block on.
TEST_F(Session, ImageChangeAtEveryBlockOfTheFirstThreeClips) {
  const int64_t clip = session::SessionOptions{}.blocks_per_clip, positions = 3 * clip, after = clip + 1;
  auto base = make();
  const auto unchanged = run(base, positions + after);
  const at::Tensor ref = input({16, 1, kH, kW}, 50), motion = input({16, 19, kH, kW}, 51);
  for (int64_t k = 0; k < positions; ++k) {
    SCOPED_TRACE("image change before block " + std::to_string(k));
    auto s = make();
    const auto before = run(s, k);
    s.set_reference(ref, motion);
    std::vector<at::Tensor> later;
    ASSERT_NO_THROW(later = run(s, after));
    for (int64_t b = 0; b < k; ++b) EXPECT_TRUE(at::equal(before[b], unchanged[b])) << "block " << b;
    EXPECT_FALSE(at::equal(later[0], unchanged[k]));
    for (const auto& x : later) EXPECT_TRUE(at::isfinite(x).all().item<bool>());
    if (k >= 1 && k < clip) {
      // Block 0's frame, captured for the sink refresh, shows the old image:
      // the new one cancels the refresh, so the stream is that of a session
      // that never refreshes its sink.
      session::SessionOptions off;
      off.refresh_sink_after_first_clip = false;
      auto n = make(off);
      run(n, k);
      n.set_reference(ref, motion);
      const auto want = run(n, after);
      for (int64_t i = 0; i < after; ++i) EXPECT_TRUE(at::equal(later[i], want[i])) << "block " << k + i;
    }
  }
}

TEST_F(Session, PromptChangeAtEveryBlockOfTheFirstThreeClips) {
  const int64_t clip = session::SessionOptions{}.blocks_per_clip, positions = 3 * clip, after = clip + 1;
  auto base = make();
  const auto unchanged = run(base, positions + after);
  for (int64_t k = 0; k < positions; ++k) {
    SCOPED_TRACE("prompt change before block " + std::to_string(k));
    auto s = make();
    const auto before = run(s, k);
    s.set_prompt(prompt(99));
    std::vector<at::Tensor> later;
    ASSERT_NO_THROW(later = run(s, after));
    for (int64_t b = 0; b < k; ++b) EXPECT_TRUE(at::equal(before[b], unchanged[b])) << "block " << b;
    EXPECT_FALSE(at::equal(later[0], unchanged[k]));
    for (const auto& x : later) EXPECT_TRUE(at::isfinite(x).all().item<bool>());
  }
}

// A prompt change re-runs the sink prefill with the sink's current reference
// frame: the image's latent inside the first clip, the refreshed frame after
// it. Setting the same prompt again therefore changes nothing, at any position.
TEST_F(Session, SamePromptAgainAtEveryBlockChangesNothing) {
  const int64_t clip = session::SessionOptions{}.blocks_per_clip, positions = 3 * clip;
  auto base = make();
  const auto unchanged = run(base, positions + 1);
  for (int64_t k = 0; k < positions; ++k) {
    SCOPED_TRACE("same prompt again before block " + std::to_string(k));
    auto s = make();
    run(s, k);
    s.set_prompt(prompt());
    const auto later = run(s, std::min<int64_t>(2, positions + 1 - k));
    for (size_t i = 0; i < later.size(); ++i) EXPECT_TRUE(at::equal(later[i], unchanged[k + i])) << "block " << k + i;
  }
}

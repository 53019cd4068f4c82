// laaudiofeat in a harness: caps, block counts and timestamps, EOS in the
// middle of a block, flush / new segment / DISCONT, both modes against the
// engine's own feature code, latency.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cmath>
#include <cstring>

#include "engine/audio/audio_features.h"
#include "tests/gst/gst_test_util.h"

using namespace la;
using la::test::Harnessed;

namespace {

constexpr int64_t kBlock = 7680;
constexpr GstClockTime kBlockNs = 480 * GST_MSECOND;
constexpr const char* kAudioCaps = "audio/x-raw, format=F32LE, rate=16000, channels=1, layout=interleaved";

// A voiced-like test signal: harmonics of 140 Hz under a slow envelope.
std::vector<float> voice(int64_t n, double phase = 0) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / 16000.0 + phase;
    double v = 0;
    for (int h = 1; h <= 5; ++h) v += std::sin(2 * M_PI * 140.0 * h * t) / h;
    x[static_cast<size_t>(i)] = static_cast<float>(v * (0.6 + 0.4 * std::sin(2 * M_PI * 2.5 * t)) * 0.3);
  }
  return x;
}

GstBuffer* audio_buffer(const float* samples, size_t n, GstClockTime pts) {
  GstBuffer* b = gst_buffer_new_memdup(samples, n * sizeof(float));
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DURATION(b) = gst_util_uint64_scale(n, GST_SECOND, 16000);
  return b;
}

// Pushes `x` in chunks of `chunk` samples, timestamped from `t0`.
void push_audio(GstHarness* h, const std::vector<float>& x, GstClockTime t0, size_t chunk = 1000) {
  for (size_t i = 0; i < x.size(); i += chunk) {
    const size_t n = std::min(chunk, x.size() - i);
    ASSERT_EQ(gst_harness_push(h, audio_buffer(x.data() + i, n, t0 + gst_util_uint64_scale(i, GST_SECOND, 16000))),
              GST_FLOW_OK);
  }
}

std::unique_ptr<Harnessed> feat(const char* mode = "streaming", double lookahead = 0.16) {
  const std::string dir = test::tiny_wav2vec2_dir();
  auto h = std::make_unique<Harnessed>("laaudiofeat", [&](GstElement* e) {
    gst_util_set_object_arg(G_OBJECT(e), "mode", mode);
    g_object_set(e, "model-dir", dir.c_str(), "context", 1.0, "lookahead", lookahead, nullptr);
  });
  if (h->h) gst_harness_set_src_caps_str(h->h, kAudioCaps);
  return h;
}

at::Tensor as_tensor(GstBuffer* b) {
  at::Tensor t = at::empty({25, 32, 12});
  EXPECT_EQ(gst_buffer_get_size(b), static_cast<gsize>(t.nbytes()));
  gst_buffer_extract(b, 0, t.data_ptr(), t.nbytes());
  return t;
}

std::shared_ptr<const models::Wav2Vec2> engine_model() {
  return models::Wav2Vec2::load(test::tiny_wav2vec2_dir(), at::kCPU, at::kFloat);
}

// What the engine gives for one whole utterance in each mode.
std::vector<at::Tensor> engine_streaming(const std::vector<float>& x, size_t chunk = 1000) {
  audio::StreamingFeatures s(engine_model(), 1.0, 0.16);
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < x.size(); i += chunk)
    for (auto& b : s.push(x.data() + i, std::min(chunk, x.size() - i))) out.push_back(b);
  for (auto& b : s.finish()) out.push_back(b);
  return out;
}
std::vector<at::Tensor> engine_offline(const std::vector<float>& x) {
  const auto m = engine_model();
  const at::Tensor emb =
      audio::offline_features(*m, at::from_blob(const_cast<float*>(x.data()), {static_cast<int64_t>(x.size())}));
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < (static_cast<int64_t>(x.size()) + kBlock - 1) / kBlock; ++b)
    out.push_back(audio::offline_block(emb, b));
  return out;
}

}  // namespace

TEST(LaAudioFeat, OutputCapsCarryTheModelsShape) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  const auto x = voice(kBlock + 2560);
  push_audio(f->h, x, 0);
  auto out = f->pull_all();
  ASSERT_EQ(out.size(), 1u);
  // The tiny wav2vec2: 24 layers (+ the input of layer 1) of 32 channels.
  EXPECT_EQ(f->src_caps(),
            "application/x-liveavatar-features, layers=(int)25, channels=(int)32, frames=(int)12, "
            "dtype=(string)float32");
  test::unref_all(out);
}

TEST(LaAudioFeat, RefusesAudioThatIsNot16kMonoF32) {
  for (const char* caps : {"audio/x-raw, format=F32LE, rate=44100, channels=1, layout=interleaved",
                           "audio/x-raw, format=F32LE, rate=16000, channels=2, layout=interleaved",
                           "audio/x-raw, format=S16LE, rate=16000, channels=1, layout=interleaved"}) {
    auto f = std::make_unique<Harnessed>("laaudiofeat", [](GstElement* e) {
      g_object_set(e, "model-dir", test::tiny_wav2vec2_dir().c_str(), nullptr);
    });
    ASSERT_TRUE(f->h);
    gst_harness_push_event(f->h, gst_event_new_caps(gst_caps_from_string(caps)));
    EXPECT_FALSE(gst_pad_has_current_caps(f->h->sinkpad)) << caps;
    const auto x = voice(kBlock);
    EXPECT_EQ(gst_harness_push(f->h, audio_buffer(x.data(), x.size(), 0)), GST_FLOW_NOT_NEGOTIATED) << caps;
  }
}

TEST(LaAudioFeat, OneBlockPer7680SamplesTimedFromTheFirstSample) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  const int64_t n = 3 * kBlock + 1000;
  const GstClockTime t0 = 1 * GST_SECOND;
  push_audio(f->h, voice(n), t0);
  // Streaming: a block leaves once 0.16 s past its end have arrived.
  auto out = f->pull_all();
  EXPECT_EQ(out.size(), static_cast<size_t>((n - 2560) / kBlock));
  ASSERT_TRUE(gst_harness_push_event(f->h, gst_event_new_eos()));
  auto rest = f->pull_all();
  out.insert(out.end(), rest.begin(), rest.end());
  ASSERT_EQ(out.size(), static_cast<size_t>((n + kBlock - 1) / kBlock));
  for (size_t b = 0; b < out.size(); ++b) {
    EXPECT_EQ(GST_BUFFER_PTS(out[b]), t0 + b * kBlockNs) << "block " << b;
    EXPECT_EQ(GST_BUFFER_DURATION(out[b]), kBlockNs);
    EXPECT_EQ(GST_BUFFER_OFFSET(out[b]), b);
    EXPECT_EQ(gst_buffer_get_size(out[b]), 25u * 32 * 12 * 4);
    EXPECT_EQ(GST_BUFFER_IS_DISCONT(out[b]), b == 0);
  }
  test::unref_all(out);
}

TEST(LaAudioFeat, EosInTheMiddleOfABlockDrainsItPadded) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  const auto x = voice(kBlock + 2000);  // one block and 125 ms
  push_audio(f->h, x, 0);
  ASSERT_TRUE(gst_harness_push_event(f->h, gst_event_new_eos()));
  auto out = f->pull_all();
  ASSERT_EQ(out.size(), 2u);
  const at::Tensor last = as_tensor(out[1]);
  // Frames past the end of the audio are zeros, the first ones are not.
  EXPECT_GT(last.select(2, 0).abs().sum().item<double>(), 0.0);
  EXPECT_EQ(last.select(2, 11).abs().sum().item<double>(), 0.0);
  // The EOS itself is forwarded after the drained block.
  GstEvent* ev = nullptr;
  bool saw_eos = false;
  while ((ev = gst_harness_try_pull_event(f->h))) {
    saw_eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    gst_event_unref(ev);
  }
  EXPECT_TRUE(saw_eos);
  test::unref_all(out);
}

TEST(LaAudioFeat, StreamingModeEqualsTheEngine) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  const auto x = voice(4 * kBlock + 3000);
  push_audio(f->h, x, 0);
  gst_harness_push_event(f->h, gst_event_new_eos());
  auto out = f->pull_all();
  const auto want = engine_streaming(x);
  ASSERT_EQ(out.size(), want.size());
  for (size_t b = 0; b < out.size(); ++b) EXPECT_TRUE(at::equal(as_tensor(out[b]), want[b])) << "block " << b;
  test::unref_all(out);
}

TEST(LaAudioFeat, OfflineModeEmitsEverythingAtEosAsTheEngine) {
  auto f = feat("offline");
  ASSERT_TRUE(f->h);
  const auto x = voice(4 * kBlock + 3000);
  push_audio(f->h, x, 2 * GST_SECOND);
  EXPECT_EQ(gst_harness_buffers_in_queue(f->h), 0u) << "offline waits for the end of the utterance";
  gst_harness_push_event(f->h, gst_event_new_eos());
  auto out = f->pull_all();
  const auto want = engine_offline(x);
  ASSERT_EQ(out.size(), 5u);
  ASSERT_EQ(want.size(), 5u);
  for (size_t b = 0; b < out.size(); ++b) {
    EXPECT_TRUE(at::equal(as_tensor(out[b]), want[b])) << "block " << b;
    EXPECT_EQ(GST_BUFFER_PTS(out[b]), 2 * GST_SECOND + b * kBlockNs);
  }
  test::unref_all(out);
}

TEST(LaAudioFeat, FlushDropsTheUtteranceAndRestartsTime) {
  for (const char* mode : {"streaming", "offline"}) {
    auto f = feat(mode);
    ASSERT_TRUE(f->h);
    push_audio(f->h, voice(kBlock + kBlock / 2 + 2560), 0);
    auto before = f->pull_all();
    EXPECT_EQ(before.size(), std::string(mode) == "streaming" ? 1u : 0u) << mode;
    f->flush(5 * GST_SECOND);
    const auto x = voice(kBlock, 0.7);
    push_audio(f->h, x, 5 * GST_SECOND);
    gst_harness_push_event(f->h, gst_event_new_eos());
    auto after = f->pull_all();
    // Only the new utterance: its one block, timed from its own first sample,
    // equal to a fresh stream's (the half block before the flush is gone).
    ASSERT_EQ(after.size(), 1u) << mode;
    EXPECT_EQ(GST_BUFFER_PTS(after[0]), 5 * GST_SECOND);
    EXPECT_TRUE(GST_BUFFER_IS_DISCONT(after[0]));
    const auto want = std::string(mode) == "streaming" ? engine_streaming(x) : engine_offline(x);
    EXPECT_TRUE(at::equal(as_tensor(after[0]), want[0])) << mode;
    test::unref_all(before);
    test::unref_all(after);
  }
}

TEST(LaAudioFeat, NewSegmentDrainsAndStartsANewUtterance) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  push_audio(f->h, voice(kBlock + kBlock / 2 + 2560), 0);  // 1 block out, 1 pending
  ASSERT_TRUE(f->push_segment(10 * GST_SECOND));
  auto out = f->pull_all();
  ASSERT_EQ(out.size(), 2u) << "the pending partial block is drained before the new segment";
  EXPECT_EQ(GST_BUFFER_PTS(out[1]), kBlockNs);
  push_audio(f->h, voice(kBlock), 10 * GST_SECOND);
  gst_harness_push_event(f->h, gst_event_new_eos());
  auto next = f->pull_all();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(GST_BUFFER_PTS(next[0]), 10 * GST_SECOND);
  EXPECT_TRUE(GST_BUFFER_IS_DISCONT(next[0]));
  test::unref_all(out);
  test::unref_all(next);
}

TEST(LaAudioFeat, DiscontDrainsAndStartsANewUtterance) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  push_audio(f->h, voice(kBlock + kBlock / 2 + 2560), 0);
  auto out = f->pull_all();
  ASSERT_EQ(out.size(), 1u);
  const auto x = voice(kBlock + 2560);
  GstBuffer* gap = audio_buffer(x.data(), x.size(), 20 * GST_SECOND);
  GST_BUFFER_FLAG_SET(gap, GST_BUFFER_FLAG_DISCONT);
  ASSERT_EQ(gst_harness_push(f->h, gap), GST_FLOW_OK);
  auto next = f->pull_all();
  // The old utterance's last (partial) block, then the new one's first block.
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(GST_BUFFER_PTS(next[0]), kBlockNs);
  EXPECT_EQ(GST_BUFFER_PTS(next[1]), 20 * GST_SECOND);
  EXPECT_TRUE(GST_BUFFER_IS_DISCONT(next[1]));
  test::unref_all(out);
  test::unref_all(next);
}

TEST(LaAudioFeat, ZeroLengthAudioGivesNoBlockAndForwardsEos) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  ASSERT_EQ(gst_harness_push(f->h, gst_buffer_new()), GST_FLOW_OK);
  ASSERT_TRUE(gst_harness_push_event(f->h, gst_event_new_eos()));
  EXPECT_EQ(gst_harness_buffers_in_queue(f->h), 0u);
}

TEST(LaAudioFeat, AudioShorterThanOneFrameGivesOneSilentBlockInBothModes) {
  for (const char* mode : {"streaming", "offline"}) {
    auto f = feat(mode);
    ASSERT_TRUE(f->h);
    push_audio(f->h, voice(100), 0);
    gst_harness_push_event(f->h, gst_event_new_eos());
    auto out = f->pull_all();
    ASSERT_EQ(out.size(), 1u) << mode;
    EXPECT_EQ(as_tensor(out[0]).abs().sum().item<double>(), 0.0) << mode;
    test::unref_all(out);
  }
}

TEST(LaAudioFeat, LatencyIsOneBlockPlusTheLookahead) {
  auto f = feat("streaming", 0.3);
  ASSERT_TRUE(f->h);
  GstClockTime min = 0;
  ASSERT_TRUE(test::query_latency(f->h, 20 * GST_MSECOND, &min));
  EXPECT_EQ(min, 20 * GST_MSECOND + 480 * GST_MSECOND + 300 * GST_MSECOND);

  // Offline cannot run live: the query fails with a warning that says why.
  auto off = feat("offline");
  ASSERT_TRUE(off->h);
  EXPECT_FALSE(test::query_latency(off->h, 20 * GST_MSECOND, &min));
  const auto warnings = off->bus->take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  test::expect_contains(warnings[0], "mode=offline cannot run with a live source");
}

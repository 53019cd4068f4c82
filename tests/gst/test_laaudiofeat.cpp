// laaudiofeat in a harness: caps, block counts and timestamps, EOS in the
// middle of a block, flush / new segment / DISCONT, both modes against the
// engine's own feature code, latency.
#include <gtest/gtest.h>

#include <map>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>

#include <ATen/ATen.h>
#include <cmath>
#include <cstring>
#include <functional>

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
std::vector<at::Tensor> engine_streaming(const std::vector<float>& x, size_t chunk = 1000, double lookahead = 0.16) {
  audio::StreamingFeatures s(engine_model(), 1.0, lookahead);
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

// SEGMENT_DONE (the end of a segment seek's segment) drains the partial last block as EOS does,
// in both modes, and is forwarded: the blocks are the engine's for the whole utterance.
TEST(LaAudioFeat, SegmentDoneDrainsTheSegmentsLastBlockInBothModes) {
  for (const char* mode : {"streaming", "offline"}) {
    SCOPED_TRACE(mode);
    auto f = feat(mode);
    ASSERT_TRUE(f->h);
    const auto x = voice(kBlock + 2000);  // one block and 125 ms
    push_audio(f->h, x, 0);
    ASSERT_TRUE(gst_harness_push_event(f->h, gst_event_new_segment_done(GST_FORMAT_TIME, 605 * GST_MSECOND)));
    auto out = f->pull_all();
    const auto want = std::string(mode) == "streaming" ? engine_streaming(x) : engine_offline(x);
    ASSERT_EQ(out.size(), 2u);
    ASSERT_EQ(want.size(), 2u);
    for (size_t i = 0; i < out.size(); ++i) EXPECT_TRUE(at::equal(as_tensor(out[i]), want[i])) << "block " << i;
    bool forwarded = false;
    while (GstEvent* ev = gst_harness_try_pull_event(f->h)) {
      forwarded |= GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT_DONE;
      gst_event_unref(ev);
    }
    EXPECT_TRUE(forwarded);
    test::unref_all(out);
  }
}

// At the default lookahead and another (which changes what every block sees): the element's
// blocks are the engine's for the same settings.
TEST(LaAudioFeat, StreamingModeEqualsTheEngine) {
  const auto x = voice(4 * kBlock + 3000);
  std::vector<at::Tensor> first_blocks;
  for (const double lookahead : {0.16, 0.3}) {
    SCOPED_TRACE(lookahead);
    auto f = feat("streaming", lookahead);
    ASSERT_TRUE(f->h);
    push_audio(f->h, x, 0);
    gst_harness_push_event(f->h, gst_event_new_eos());
    auto out = f->pull_all();
    const auto want = engine_streaming(x, 1000, lookahead);
    ASSERT_EQ(out.size(), want.size());
    for (size_t b = 0; b < out.size(); ++b) EXPECT_TRUE(at::equal(as_tensor(out[b]), want[b])) << "block " << b;
    first_blocks.push_back(as_tensor(out[0]).clone());
    test::unref_all(out);
  }
  EXPECT_FALSE(at::equal(first_blocks[0], first_blocks[1])) << "the lookahead changed nothing";
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

TEST(LaAudioFeat, OfflineDiscontDrainsAndStartsANewUtterance) {
  auto f = feat("offline");
  ASSERT_TRUE(f->h);
  push_audio(f->h, voice(kBlock + kBlock / 2 + 2560), 0);
  auto out = f->pull_all();
  ASSERT_EQ(out.size(), 0u);
  const auto x = voice(kBlock + 2560);
  GstBuffer* gap = audio_buffer(x.data(), x.size(), 20 * GST_SECOND);
  GST_BUFFER_FLAG_SET(gap, GST_BUFFER_FLAG_DISCONT);
  ASSERT_EQ(gst_harness_push(f->h, gap), GST_FLOW_OK);
  ASSERT_TRUE(gst_harness_push_event(f->h, gst_event_new_eos()));
  auto next = f->pull_all();
  // The old utterance's two blocks at the DISCONT, then the new one's two at EOS.
  ASSERT_EQ(next.size(), 4u);
  EXPECT_EQ(GST_BUFFER_PTS(next[1]), kBlockNs);
  EXPECT_EQ(GST_BUFFER_PTS(next[2]), 20 * GST_SECOND);
  EXPECT_TRUE(GST_BUFFER_IS_DISCONT(next[2]));
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

TEST(LaAudioFeat, LatencyIsOneBlockPlusTheLookaheadPlusTheIdleTimeoutPlusMeasuredProcessing) {
  auto f = feat("streaming", 0.3);
  ASSERT_TRUE(f->h);
  GstClockTime min = 0;
  ASSERT_TRUE(test::query_latency(f->h, 20 * GST_MSECOND, &min));
  // Upstream's 20 ms, the block, the lookahead; a live upstream: the idle
  // filler's 0.2 s (idle-timeout) and one 40 ms tick of its clock. Nothing
  // for computing a block until it has been measured.
  constexpr GstClockTime kFixed = 20 * GST_MSECOND + 480 * GST_MSECOND + 300 * GST_MSECOND + 240 * GST_MSECOND;
  EXPECT_EQ(min, kFixed);
  // After the warm-up block, the measured time (the tiny wav2vec2: a few ms,
  // rounded up to 10 ms) adds to it, and a LATENCY message says so.
  push_audio(f->h, voice(6 * kBlock + 4800), 0);
  auto blocks = f->pull_all();
  EXPECT_GE(blocks.size(), 6u);
  test::unref_all(blocks);
  ASSERT_TRUE(test::query_latency(f->h, 20 * GST_MSECOND, &min));
  EXPECT_GE(min, kFixed + 10 * GST_MSECOND);
  EXPECT_LT(min, kFixed + 240 * GST_MSECOND);
  EXPECT_GE(f->bus->count(GST_MESSAGE_LATENCY), 1u);

  // Offline cannot run live: the query fails with a warning that says why.
  auto off = feat("offline");
  ASSERT_TRUE(off->h);
  EXPECT_FALSE(test::query_latency(off->h, 20 * GST_MSECOND, &min));
  const auto warnings = off->bus->take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  test::expect_contains(warnings[0], "mode=offline cannot run with a live source");
}

// mode=offline with a live source says so at its first buffer. A live pipeline cannot preroll
// before the utterance ends, so the LATENCY query (which alone warned before) came only at EOS,
// and a live source that does not end left the pipeline in PAUSED without a word: here the
// source never ends, and the warning must come anyway. A source that is not live gets none.
TEST(LaAudioFeat, OfflineWithALiveSourceWarnsAtTheFirstBuffer) {
  for (const bool live : {true, false}) {
    SCOPED_TRACE(live ? "live, endless" : "not live");
    GstElement* p = test::parse(std::string("audiotestsrc ") + (live ? "is-live=true" : "num-buffers=20") +
                                " samplesperbuffer=1600 ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! "
                                "laaudiofeat mode=offline model-dir=" + test::tiny_wav2vec2_dir() + " ! fakesink");
    ASSERT_TRUE(p);
    gst_element_set_state(p, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(p);
    std::vector<std::string> warnings;
    bool eos = false;
    while (GstMessage* m = gst_bus_timed_pop_filtered(
               bus, 60 * GST_SECOND,
               static_cast<GstMessageType>(GST_MESSAGE_WARNING | GST_MESSAGE_EOS | GST_MESSAGE_ERROR))) {
      const GstMessageType type = GST_MESSAGE_TYPE(m);
      if (type == GST_MESSAGE_WARNING) warnings.push_back(test::message_text(m));
      if (type == GST_MESSAGE_ERROR) ADD_FAILURE() << test::message_text(m);
      eos = type == GST_MESSAGE_EOS;
      gst_message_unref(m);
      if (type != GST_MESSAGE_WARNING || live) break;  // live: the first warning is the answer
    }
    gst_object_unref(bus);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    if (live) {
      ASSERT_EQ(warnings.size(), 1u) << "no warning within 60 s of a live source";
      test::expect_contains(warnings[0], "mode=offline cannot run with a live source");
    } else {
      EXPECT_TRUE(eos);
      EXPECT_TRUE(warnings.empty()) << warnings.front();
    }
  }
}

// --------------------------------------------- live audio: time, not counting --

namespace {

// Runs laaudiofeat (streaming) over `pushes` and EOS; returns the blocks.
std::vector<GstBuffer*> run_streaming(const std::function<void(GstHarness*)>& pushes) {
  auto f = feat();
  EXPECT_TRUE(f->h);
  if (!f->h) return {};
  pushes(f->h);
  EXPECT_TRUE(gst_harness_push_event(f->h, gst_event_new_eos()));
  return f->pull_all();
}

// The blocks are continuous from t0 (block b at t0 + 0.48 b) and equal,
// byte for byte, to `want`'s.
void expect_same_continuous_blocks(const std::vector<GstBuffer*>& got, const std::vector<GstBuffer*>& want,
                                   GstClockTime t0) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t b = 0; b < got.size(); ++b) {
    EXPECT_EQ(GST_BUFFER_PTS(got[b]), t0 + b * kBlockNs) << "block " << b;
    EXPECT_EQ(GST_BUFFER_IS_DISCONT(got[b]), b == 0) << "block " << b;
    EXPECT_TRUE(at::equal(as_tensor(got[b]), as_tensor(want[b]))) << "block " << b;
  }
}

}  // namespace

// A live source pauses (a TTS between sentences): the next audio is stamped
// 1.13 s after the last sample. The blocks go on at the audio's time, the
// pause filled with silence: the same blocks as audio with that silence in it.
TEST(LaAudioFeat, StreamingPauseIsFilledWithSilenceAndTheAudioKeepsItsTime) {
  const GstClockTime t0 = 3 * GST_SECOND;
  const auto a = voice(kBlock + 4000), b = voice(kBlock + 1234, 0.37);
  const int64_t pause = 18080;  // 1.13 s
  const GstClockTime b_time = t0 + gst_util_uint64_scale(a.size() + pause, GST_SECOND, 16000);
  auto got = run_streaming([&](GstHarness* h) {
    push_audio(h, a, t0);
    push_audio(h, b, b_time);
  });
  auto want = run_streaming([&](GstHarness* h) {
    std::vector<float> x = a;
    x.insert(x.end(), pause, 0.0f);
    x.insert(x.end(), b.begin(), b.end());
    push_audio(h, x, t0);
  });
  // ceil((a + pause + b) / 7680) = 6 blocks
  EXPECT_EQ(want.size(), 6u);
  expect_same_continuous_blocks(got, want, t0);
  test::unref_all(got);
  test::unref_all(want);
}

// The same pause announced by DISCONT and by a GAP event: the same blocks.
TEST(LaAudioFeat, StreamingDiscontAndGapEventAreSilenceToo) {
  const auto a = voice(kBlock + 4000), b = voice(kBlock + 1234, 0.37);
  const int64_t pause = 18080;
  const GstClockTime a_end = gst_util_uint64_scale(a.size(), GST_SECOND, 16000);
  const GstClockTime b_time = gst_util_uint64_scale(a.size() + pause, GST_SECOND, 16000);
  auto jump = run_streaming([&](GstHarness* h) {
    push_audio(h, a, 0);
    push_audio(h, b, b_time);
  });
  auto discont = run_streaming([&](GstHarness* h) {
    push_audio(h, a, 0);
    GstBuffer* first = audio_buffer(b.data(), 1000, b_time);
    GST_BUFFER_FLAG_SET(first, GST_BUFFER_FLAG_DISCONT);
    ASSERT_EQ(gst_harness_push(h, first), GST_FLOW_OK);
    push_audio(h, std::vector<float>(b.begin() + 1000, b.end()), b_time + gst_util_uint64_scale(1000, GST_SECOND, 16000));
  });
  auto gap = run_streaming([&](GstHarness* h) {
    push_audio(h, a, 0);
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_gap(a_end, b_time - a_end)));
    push_audio(h, b, b_time);
  });
  expect_same_continuous_blocks(discont, jump, 0);
  expect_same_continuous_blocks(gap, jump, 0);
  test::unref_all(jump);
  test::unref_all(discont);
  test::unref_all(gap);
}

// A GAP before any audio starts the stream at the gap's time.
TEST(LaAudioFeat, StreamingGapFirstStartsTheStreamAtItsTime) {
  auto got = run_streaming([&](GstHarness* h) {
    ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_gap(GST_SECOND, GST_SECOND)));
    push_audio(h, voice(4000), 2 * GST_SECOND);
  });
  auto want = run_streaming([&](GstHarness* h) {
    std::vector<float> x(16000, 0.0f);
    const auto v = voice(4000);
    x.insert(x.end(), v.begin(), v.end());
    push_audio(h, x, GST_SECOND);
  });
  expect_same_continuous_blocks(got, want, GST_SECOND);
  test::unref_all(got);
  test::unref_all(want);
}

// Audio stamped before time already covered loses the overlap; jitter within
// 40 ms is ignored (the samples stay contiguous).
TEST(LaAudioFeat, StreamingOverlapIsDroppedAndJitterIgnored) {
  const auto a = voice(kBlock), b = voice(kBlock + 3000, 0.2);
  const GstClockTime a_end = gst_util_uint64_scale(a.size(), GST_SECOND, 16000);
  auto overlap = run_streaming([&](GstHarness* h) {
    push_audio(h, a, 0);
    // One buffer whose first 1600 samples overlap a. (Had it come in smaller
    // buffers, each would be placed on its own: the overlap of a later one
    // may fall within the jitter tolerance.)
    push_audio(h, b, a_end - 100 * GST_MSECOND, b.size());
  });
  auto jitter = run_streaming([&](GstHarness* h) {
    push_audio(h, a, 0);
    push_audio(h, b, a_end + 30 * GST_MSECOND);  // within the 40 ms tolerance
  });
  auto cut = run_streaming([&](GstHarness* h) {
    std::vector<float> x = a;
    x.insert(x.end(), b.begin() + 1600, b.end());
    push_audio(h, x, 0);
  });
  auto joined = run_streaming([&](GstHarness* h) {
    std::vector<float> x = a;
    x.insert(x.end(), b.begin(), b.end());
    push_audio(h, x, 0);
  });
  expect_same_continuous_blocks(overlap, cut, 0);
  expect_same_continuous_blocks(jitter, joined, 0);
  for (auto* v : {&overlap, &jitter, &cut, &joined}) test::unref_all(*v);
}

// A live source that stops sending for 2 s (a muted call): with the idle
// filler the blocks keep coming during the pause, driven by the pipeline
// clock, continuous in time; the audio that comes back keeps its timestamps.
// Without it (idle-timeout=0) nothing comes out during the pause.
TEST(LaAudioFeat, LiveSourceThatGoesQuietKeepsBlocksComing) {
  std::map<double, size_t> blocks_during_pause;
  for (const double idle : {0.2, 1.0, 0.0}) {
    test::ensure_gst();
    const std::string line =
        "appsrc name=src is-live=true format=time caps=\"" + std::string(kAudioCaps) +
        "\" ! laaudiofeat name=feat context=1.0 idle-timeout=" + std::to_string(idle) + " model-dir=" +
        test::tiny_wav2vec2_dir() + " ! appsink name=out sync=false max-buffers=0 wait-on-eos=false";
    GError* err = nullptr;
    GstElement* p = gst_parse_launch(line.c_str(), &err);
    ASSERT_TRUE(p && !err) << (err ? err->message : "");
    GstElement* src = gst_bin_get_by_name(GST_BIN(p), "src");
    GstElement* out = gst_bin_get_by_name(GST_BIN(p), "out");
    ASSERT_EQ(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_ASYNC);
    GstClock* clock = gst_pipeline_get_clock(GST_PIPELINE(p));
    auto running_time = [&] { return gst_clock_get_time(clock) - gst_element_get_base_time(p); };
    // Pushes `seconds` of voice stamped from `t` in 100 ms buffers, in real time.
    auto speak = [&](GstClockTime t, double seconds) {
      const auto x = voice(static_cast<int64_t>(seconds * 16000));
      for (size_t i = 0; i < x.size(); i += 1600) {
        const GstClockTime pts = t + gst_util_uint64_scale(i, GST_SECOND, 16000);
        while (running_time() < pts + 100 * GST_MSECOND) g_usleep(5000);  // captured, then delivered
        ASSERT_EQ(gst_app_src_push_buffer(GST_APP_SRC(src), audio_buffer(x.data() + i, 1600, pts)), GST_FLOW_OK);
      }
    };
    // The first audio anchors the stream at its timestamp.
    while (running_time() == GST_CLOCK_TIME_NONE || running_time() > 100 * GST_SECOND) g_usleep(1000);
    const GstClockTime t0 = running_time();
    speak(t0, 1.0);
    const GstClockTime quiet_from = running_time();
    g_usleep(2 * G_USEC_PER_SEC);  // the source sends nothing
    const GstClockTime pause_read_at = running_time();
    std::vector<GstClockTime> during;  // PTS of the blocks that came out during the pause
    while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 0)) {
      during.push_back(GST_BUFFER_PTS(gst_sample_get_buffer(s)));
      gst_sample_unref(s);
    }
    const GstClockTime back = t0 + 3 * GST_SECOND;  // it speaks again, at its own time
    speak(back, 1.0);
    gst_app_src_end_of_stream(GST_APP_SRC(src));
    GstBus* bus = gst_element_get_bus(p);
    GstMessage* end = gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND,
                                                 static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    ASSERT_TRUE(end && GST_MESSAGE_TYPE(end) == GST_MESSAGE_EOS) << "no EOS";
    gst_message_unref(end);
    gst_object_unref(bus);
    std::vector<GstClockTime> all = during;
    while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 0)) {
      all.push_back(GST_BUFFER_PTS(gst_sample_get_buffer(s)));
      gst_sample_unref(s);
    }
    // Continuous blocks from t0 over the 4 s: ceil(4 / 0.48) = 9.
    ASSERT_EQ(all.size(), 9u) << "idle-timeout " << idle;
    for (size_t b = 0; b < all.size(); ++b) EXPECT_EQ(all[b], t0 + b * kBlockNs) << "block " << b;
    blocks_during_pause[idle] = during.size();
    if (idle > 0) {
      // When the test reads them (about quiet_from + 2 s), silence up to that
      // time less idle-timeout has gone in, no further: the blocks that end there
      // with the 0.16 s lookahead came out during the pause (5 for 0.2 s, 3 for 1 s;
      // one less allowed for the filler's 40 ms tick and the block's computation).
      const double filled = GST_TIME_AS_MSECONDS(pause_read_at - t0) / 1000.0 - idle;
      const auto ready = static_cast<size_t>(std::floor((filled - 0.16) / 0.48));
      std::printf("[idle] idle-timeout %.1f s: %zu blocks out during the pause, %zu ready by then\n", idle,
                  during.size(), ready);
      EXPECT_GE(during.size() + 1, ready) << "idle-timeout " << idle << ": blocks out during the 2 s pause; audio stopped at "
                                          << GST_TIME_AS_MSECONDS(quiet_from - t0) << " ms";
      EXPECT_LE(during.size(), ready) << "idle-timeout " << idle << ": silence came sooner than the timeout";
    } else {
      EXPECT_LE(during.size(), 2u) << "without idle, only the spoken second's blocks";
    }
    gst_object_unref(clock);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(src);
    gst_object_unref(out);
    gst_object_unref(p);
  }
  EXPECT_GT(blocks_during_pause[0.2], blocks_during_pause[1.0]) << "a longer idle-timeout fills later";
  EXPECT_GT(blocks_during_pause[1.0], blocks_during_pause[0.0]);
}

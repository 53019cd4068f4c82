// lavaedecode in a harness: 12 frames per block with their timestamps, the
// four output formats, frames equal to the engine's primed stream decode,
// online and offline decode bit-identical, flush, EOS, caps that do not fit,
// progress messages, latency.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <ATen/ATen.h>
#include <cstdio>
#include <cstring>

#include <gst/cuda/gstcudacontext.h>
#include <gst/cuda/gstcudautils.h>

#include "engine/models/wan_vae/wan_vae.h"
#include "engine/runtime/cuda_runtime_info.h"
#include "gst/cuda_context.h"
#include "engine/video/pixel_convert.h"
#include "gst/tensor_memory.h"
#include "tests/gst/gst_test_util.h"

using namespace la;
using la::test::Harnessed;

namespace {

constexpr int kH = 4, kW = 6;  // latent size: 32 x 48 pixels
constexpr GstClockTime kBlockNs = 480 * GST_MSECOND, kFrameNs = 40 * GST_MSECOND;

std::string latent_caps(int channels = 16, int frames = 3, const char* dtype = "float32") {
  return "application/x-liveavatar-latent, channels=(int)" + std::to_string(channels) +
         ", frames=(int)" + std::to_string(frames) + ", latent-height=(int)" + std::to_string(kH) +
         ", latent-width=(int)" + std::to_string(kW) + ", dtype=(string)" + dtype;
}

// Seeded latent blocks [16,3,h,w].
std::vector<at::Tensor> latent_blocks(int n, int seed = 7) {
  at::manual_seed(seed);
  std::vector<at::Tensor> out;
  for (int i = 0; i < n; ++i) out.push_back(at::randn({16, 3, kH, kW}));
  return out;
}

// A plain system-memory buffer with a copy of the block (the mapped path).
GstBuffer* latent_buffer(const at::Tensor& block, GstClockTime pts) {
  GstBuffer* b = gst_buffer_new_memdup(block.data_ptr(), block.nbytes());
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DURATION(b) = kBlockNs;
  return b;
}

std::unique_ptr<Harnessed> decoder(bool online = true, const char* downstream = nullptr) {
  const std::string dir = test::tiny_checkpoint_dir().string();
  auto h = std::make_unique<Harnessed>("lavaedecode", [&](GstElement* e) {
    g_object_set(e, "checkpoint-dir", dir.c_str(), "online", online, nullptr);
  });
  if (h->h && downstream) gst_harness_set_sink_caps_str(h->h, downstream);
  return h;
}

// Sends caps; true when the element took them and has output caps.
bool negotiate(Harnessed& d, const std::string& caps = latent_caps()) {
  GstCaps* sent = gst_caps_from_string(caps.c_str());
  gst_harness_push_event(d.h, gst_event_new_caps(gst_caps_ref(sent)));
  GstCaps* in = gst_pad_get_current_caps(GST_PAD_PEER(d.h->srcpad));
  GstCaps* out = gst_pad_get_current_caps(d.h->sinkpad);
  const bool ok = in && out && gst_caps_is_equal(in, sent);
  gst_caps_unref(sent);
  if (in) gst_caps_unref(in);
  if (out) gst_caps_unref(out);
  return ok;
}

void push_blocks(Harnessed& d, const std::vector<at::Tensor>& blocks, GstClockTime t0) {
  for (size_t b = 0; b < blocks.size(); ++b)
    ASSERT_EQ(gst_harness_push(d.h, latent_buffer(blocks[b], t0 + b * kBlockNs)), GST_FLOW_OK) << "block " << b;
}

std::string bytes_of(GstBuffer* b) {
  std::string s(gst_buffer_get_size(b), '\0');
  gst_buffer_extract(b, 0, s.data(), s.size());
  return s;
}

// The engine's frames for one stream of blocks, primed as the element does
// (elements/vae_decode_stream.h), converted to `format`.
at::Tensor engine_frames(const std::vector<at::Tensor>& blocks, video::PixelFormat format,
                         const std::string& vae_file = test::tiny_vae_file()) {
  const auto vae = models::WanVae::load(vae_file, at::kCPU, at::kFloat);
  models::WanVaeDecodeState state;
  vae->decode(state, blocks[0].slice(1, 0, 1));
  std::vector<at::Tensor> videos;
  for (const auto& b : blocks) videos.push_back(vae->decode(state, b));
  return video::to_pixels(at::cat(videos, 1), format);
}

}  // namespace

TEST(LaVaeDecode, TwelveFramesPerBlockAtBlockPtsPlusIOver25) {
  auto d = decoder();
  ASSERT_TRUE(d->h);
  ASSERT_TRUE(negotiate(*d));
  const GstClockTime t0 = 2 * GST_SECOND;
  push_blocks(*d, latent_blocks(3), t0);
  auto out = d->pull_all();
  ASSERT_EQ(out.size(), 36u);
  for (size_t n = 0; n < out.size(); ++n) {
    // Frame n of the stream is at t0 + n/25 s, i.e. block PTS + i/25 s.
    EXPECT_EQ(GST_BUFFER_PTS(out[n]), t0 + (n / 12) * kBlockNs + (n % 12) * kFrameNs) << "frame " << n;
    EXPECT_EQ(GST_BUFFER_PTS(out[n]), t0 + n * kFrameNs);
    EXPECT_EQ(GST_BUFFER_DURATION(out[n]), kFrameNs);
    EXPECT_EQ(GST_BUFFER_OFFSET(out[n]), n);
    EXPECT_EQ(GST_BUFFER_IS_DISCONT(out[n]), n == 0);
    EXPECT_EQ(gst_buffer_get_size(out[n]), 48u * 32 * 4);
  }
  EXPECT_EQ(d->src_caps(),
            "video/x-raw, width=(int)48, height=(int)32, framerate=(fraction)25/1, "
            "pixel-aspect-ratio=(fraction)1/1, format=(string)RGBA");
  test::unref_all(out);
}

// One caps event downstream for one negotiation: the first block does not
// negotiate again (the link left the reconfigure flag set), and a RECONFIGURE
// that ends in the same caps sends none.
TEST(LaVaeDecode, SendsItsCapsOnce) {
  auto d = decoder(true, "video/x-raw, format=RGB");
  ASSERT_TRUE(d->h);
  ASSERT_TRUE(negotiate(*d));
  d->push_segment(0);
  const auto blocks = latent_blocks(3);
  push_blocks(*d, {blocks[0]}, 0);
  gst_harness_push_upstream_event(d->h, gst_event_new_reconfigure());
  push_blocks(*d, {blocks[1], blocks[2]}, kBlockNs);
  int caps_events = 0;
  while (GstEvent* e = gst_harness_try_pull_event(d->h)) {
    caps_events += GST_EVENT_TYPE(e) == GST_EVENT_CAPS;
    gst_event_unref(e);
  }
  EXPECT_EQ(caps_events, 1);
  auto frames = d->pull_all();
  EXPECT_EQ(frames.size(), 36u);
  test::unref_all(frames);
}

TEST(LaVaeDecode, EachFormatNegotiatesWithItsFrameSize) {
  for (const char* format : {"RGBA", "RGB", "I420", "NV12"}) {
    auto d = decoder(true, (std::string("video/x-raw, format=") + format).c_str());
    ASSERT_TRUE(d->h);
    ASSERT_TRUE(negotiate(*d)) << format;
    push_blocks(*d, latent_blocks(1), 0);
    auto out = d->pull_all();
    ASSERT_EQ(out.size(), 12u) << format;
    const auto f = video::pixel_format_from_name(format);
    EXPECT_EQ(gst_buffer_get_size(out[0]), static_cast<gsize>(video::frame_bytes(f, 48, 32))) << format;
    test::expect_contains(d->src_caps(), std::string("format=(string)") + format);
    // The frames are the engine's, byte for byte.
    const at::Tensor want = engine_frames(latent_blocks(1), f);
    for (size_t i = 0; i < out.size(); ++i)
      EXPECT_EQ(bytes_of(out[i]), std::string(static_cast<const char*>(want[static_cast<int64_t>(i)].data_ptr()),
                                               want.size(1)))
          << format << " frame " << i;
    test::unref_all(out);
  }
}

TEST(LaVaeDecode, FramesContinueOneCausalStreamAcrossBlocks) {
  auto d = decoder(true, "video/x-raw, format=RGB");
  ASSERT_TRUE(d->h);
  ASSERT_TRUE(negotiate(*d));
  const auto blocks = latent_blocks(3);
  push_blocks(*d, blocks, 0);
  auto out = d->pull_all();
  ASSERT_EQ(out.size(), 36u);
  const at::Tensor want = engine_frames(blocks, video::PixelFormat::kRGB);
  for (int64_t n = 0; n < 36; ++n)
    EXPECT_EQ(bytes_of(out[static_cast<size_t>(n)]),
              std::string(static_cast<const char*>(want[n].data_ptr()), want.size(1)))
        << "frame " << n;
  test::unref_all(out);
}

// `vae` names the file to decode with: alone, or instead of checkpoint-dir's (here another
// tiny checkpoint's, seed 43, whose frames differ).
TEST(LaVaeDecode, VaeFileAloneOrOverridingTheCheckpointDirs) {
  test::TempDir other;
  ASSERT_EQ(test::make_tiny_checkpoint(other.path(), 43), 0);
  const std::string other_vae = (other.path() / "Wan2.2-S2V-14B" / "Wan2.1_VAE.pth").string();
  const auto blocks = latent_blocks(2);
  const at::Tensor ours = engine_frames(blocks, video::PixelFormat::kRGB);
  const at::Tensor theirs = engine_frames(blocks, video::PixelFormat::kRGB, other_vae);
  ASSERT_FALSE(at::equal(ours, theirs)) << "the two VAEs must differ for this test to mean anything";
  const std::string dir = test::tiny_checkpoint_dir().string();
  struct Case {
    const char* what;
    std::string checkpoint_dir, vae;
    const at::Tensor* want;
  };
  for (const Case& c : {Case{"vae alone", "", test::tiny_vae_file(), &ours},
                        Case{"vae over checkpoint-dir", dir, other_vae, &theirs}}) {
    SCOPED_TRACE(c.what);
    Harnessed d("lavaedecode", [&](GstElement* e) {
      if (!c.checkpoint_dir.empty()) g_object_set(e, "checkpoint-dir", c.checkpoint_dir.c_str(), nullptr);
      g_object_set(e, "vae", c.vae.c_str(), nullptr);
    });
    ASSERT_TRUE(d.h);
    gst_harness_set_sink_caps_str(d.h, "video/x-raw, format=RGB");
    ASSERT_TRUE(negotiate(d));
    push_blocks(d, blocks, 0);
    auto out = d.pull_all();
    ASSERT_EQ(out.size(), 24u);
    for (int64_t n = 0; n < 24; ++n)
      EXPECT_EQ(bytes_of(out[static_cast<size_t>(n)]),
                std::string(static_cast<const char*>((*c.want)[n].data_ptr()), c.want->size(1)))
          << "frame " << n;
    test::unref_all(out);
  }
}

TEST(LaVaeDecode, TensorMemoryInputIsDecodedLikeMappedInput) {
  auto d = decoder(true, "video/x-raw, format=RGB");
  ASSERT_TRUE(d->h);
  ASSERT_TRUE(negotiate(*d));
  const auto blocks = latent_blocks(1);
  GstBuffer* in = gst::buffer_new_from_tensor(blocks[0].clone());
  GST_BUFFER_PTS(in) = 0;
  ASSERT_EQ(gst_harness_push(d->h, in), GST_FLOW_OK);
  auto out = d->pull_all();
  ASSERT_EQ(out.size(), 12u);
  const at::Tensor want = engine_frames(blocks, video::PixelFormat::kRGB);
  EXPECT_EQ(bytes_of(out[5]), std::string(static_cast<const char*>(want[5].data_ptr()), want.size(1)));
  test::unref_all(out);
}

TEST(LaVaeDecode, OnlineAndOfflineGiveIdenticalFrames) {
  const auto blocks = latent_blocks(3);
  auto on = decoder(true, "video/x-raw, format=I420");
  auto off = decoder(false, "video/x-raw, format=I420");
  ASSERT_TRUE(on->h && off->h);
  ASSERT_TRUE(negotiate(*on) && negotiate(*off));
  push_blocks(*on, blocks, GST_SECOND);
  push_blocks(*off, blocks, GST_SECOND);
  EXPECT_EQ(gst_harness_buffers_in_queue(off->h), 0u) << "online=false decodes at EOS";
  ASSERT_TRUE(gst_harness_push_event(on->h, gst_event_new_eos()));
  ASSERT_TRUE(gst_harness_push_event(off->h, gst_event_new_eos()));
  auto a = on->pull_all(), b = off->pull_all();
  ASSERT_EQ(a.size(), 36u);
  ASSERT_EQ(b.size(), 36u);
  for (size_t n = 0; n < a.size(); ++n) {
    EXPECT_EQ(bytes_of(a[n]), bytes_of(b[n])) << "frame " << n;
    EXPECT_EQ(GST_BUFFER_PTS(a[n]), GST_BUFFER_PTS(b[n]));
  }
  test::unref_all(a);
  test::unref_all(b);
}

TEST(LaVaeDecode, FlushStartsANewDecoderStream) {
  const auto blocks = latent_blocks(2);
  // Reference: a fresh element decoding only the second block.
  auto fresh = decoder(true, "video/x-raw, format=RGB");
  ASSERT_TRUE(fresh->h);
  ASSERT_TRUE(negotiate(*fresh));
  push_blocks(*fresh, {blocks[1]}, 0);
  auto want = fresh->pull_all();

  auto d = decoder(true, "video/x-raw, format=RGB");
  ASSERT_TRUE(d->h);
  ASSERT_TRUE(negotiate(*d));
  push_blocks(*d, {blocks[0]}, 0);
  auto first = d->pull_all();
  d->flush(3 * GST_SECOND);
  push_blocks(*d, {blocks[1]}, 3 * GST_SECOND);
  auto got = d->pull_all();
  ASSERT_EQ(got.size(), 12u);
  ASSERT_EQ(want.size(), 12u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(bytes_of(got[i]), bytes_of(want[i])) << "frame " << i << ": the cache was not reset";
    EXPECT_EQ(GST_BUFFER_PTS(got[i]), 3 * GST_SECOND + i * kFrameNs);
  }
  EXPECT_TRUE(GST_BUFFER_IS_DISCONT(got[0]));
  test::unref_all(want);
  test::unref_all(first);
  test::unref_all(got);
}

TEST(LaVaeDecode, OfflineFlushDropsKeptBlocks) {
  auto d = decoder(false);
  ASSERT_TRUE(d->h);
  ASSERT_TRUE(negotiate(*d));
  push_blocks(*d, latent_blocks(2), 0);
  d->flush(0);
  push_blocks(*d, latent_blocks(1), 0);
  ASSERT_TRUE(gst_harness_push_event(d->h, gst_event_new_eos()));
  EXPECT_EQ(gst_harness_buffers_in_queue(d->h), 12u);
}

// EOS, and SEGMENT_DONE (the end of a segment seek's segment: looping and gapless playback get
// the whole segment), decode the kept blocks and are forwarded after the frames.
TEST(LaVaeDecode, EosAndSegmentDoneAreForwardedAfterTheKeptBlocksFrames) {
  for (const bool eos : {true, false}) {
    SCOPED_TRACE(eos ? "EOS" : "SEGMENT_DONE");
    auto d = decoder(false);
    ASSERT_TRUE(d->h);
    ASSERT_TRUE(negotiate(*d));
    push_blocks(*d, latent_blocks(2), 0);
    EXPECT_EQ(gst_harness_buffers_in_queue(d->h), 0u);
    ASSERT_TRUE(gst_harness_push_event(
        d->h, eos ? gst_event_new_eos() : gst_event_new_segment_done(GST_FORMAT_TIME, 960 * GST_MSECOND)));
    EXPECT_EQ(gst_harness_buffers_in_queue(d->h), 24u);
    GstEvent* last = nullptr;
    while (GstEvent* ev = gst_harness_try_pull_event(d->h)) {
      if (last) gst_event_unref(last);
      last = ev;
    }
    ASSERT_NE(last, nullptr);
    EXPECT_EQ(GST_EVENT_TYPE(last), eos ? GST_EVENT_EOS : GST_EVENT_SEGMENT_DONE);
    gst_event_unref(last);
  }
}

TEST(LaVaeDecode, CapsThatDoNotFitFailNegotiationWithAClearMessage) {
  struct Case {
    std::string caps, words;
  };
  for (const Case& c : {Case{latent_caps(8), "channels=8 but the VAE"},
                        Case{latent_caps(16, 4), "frames=4 but a block is 3 latent frames"},
                        Case{latent_caps(16, 3, "float16"), "field dtype is float16"},
                        Case{"application/x-liveavatar-latent, channels=(int)16, frames=(int)3, dtype=(string)float32",
                             "field latent-height is missing"}}) {
    auto d = decoder();
    ASSERT_TRUE(d->h);
    EXPECT_FALSE(negotiate(*d, c.caps)) << c.caps;
    const auto errors = d->bus->take();
    ASSERT_EQ(errors.size(), 1u) << c.caps;
    test::expect_contains(errors[0], c.words);
    // Data after refused caps is not-negotiated, not decoded; GStreamer sends the sticky caps
    // again before each buffer, refused again without another error (gst/refused_caps.h).
    EXPECT_EQ(gst_harness_push(d->h, latent_buffer(latent_blocks(1)[0], 0)), GST_FLOW_NOT_NEGOTIATED);
    EXPECT_EQ(gst_harness_push(d->h, latent_buffer(latent_blocks(1)[0], kBlockNs)), GST_FLOW_NOT_NEGOTIATED);
    EXPECT_EQ(d->bus->take().size(), 0u) << "one error per refused caps";
    // Other caps that do not fit either: their own error.
    EXPECT_FALSE(negotiate(*d, latent_caps(4)));
    EXPECT_EQ(d->bus->take().size(), 1u);
  }
}

TEST(LaVaeDecode, DownstreamWithoutOurFormatsFailsWithAClearMessage) {
  auto d = decoder(true, "video/x-raw, format=BGRx");
  ASSERT_TRUE(d->h);
  EXPECT_FALSE(negotiate(*d));
  const auto errors = d->bus->take();
  ASSERT_EQ(errors.size(), 1u);
  test::expect_contains(errors[0], "downstream accepts none of video/x-raw RGBA, RGB, I420, NV12 at 48x32");
}

TEST(LaVaeDecode, PostsProgressPerBlock) {
  auto d = decoder();
  ASSERT_TRUE(d->h);
  ASSERT_TRUE(negotiate(*d));
  push_blocks(*d, latent_blocks(3), GST_SECOND);
  auto out = d->pull_all();
  auto msgs = d->bus->take_element_messages("liveavatar-progress");
  ASSERT_EQ(msgs.size(), 3u);
  for (size_t i = 0; i < msgs.size(); ++i) {
    guint64 blocks = 0, frames = 0, pts = 0, rss = 0, device = 1;
    double fps = 0;
    ASSERT_TRUE(gst_structure_get(msgs[i], "blocks", G_TYPE_UINT64, &blocks, "frames", G_TYPE_UINT64, &frames,
                                  "block-pts", G_TYPE_UINT64, &pts, "fps", G_TYPE_DOUBLE, &fps, "rss-bytes",
                                  G_TYPE_UINT64, &rss, "device-bytes", G_TYPE_UINT64, &device, nullptr));
    EXPECT_EQ(blocks, i + 1);
    EXPECT_EQ(frames, 12 * (i + 1));
    EXPECT_EQ(pts, GST_SECOND + i * kBlockNs);
    EXPECT_GT(fps, 0.0);
    EXPECT_GT(rss, 0u);
    EXPECT_EQ(device, 0u) << "on the CPU";
    gst_structure_free(msgs[i]);
  }
  test::unref_all(out);
}

TEST(LaVaeDecode, LatencyIsMeasuredOnlineAndRefusedLiveOffline) {
  auto d = decoder();
  ASSERT_TRUE(d->h);
  GstClockTime min = 0;
  // Nothing added before a block has been measured (gst/block_latency.h).
  ASSERT_TRUE(test::query_latency(d->h, 100 * GST_MSECOND, &min));
  EXPECT_EQ(min, 100 * GST_MSECOND);

  auto off = decoder(false);
  ASSERT_TRUE(off->h);
  EXPECT_FALSE(test::query_latency(off->h, 100 * GST_MSECOND, &min));
  const auto warnings = off->bus->take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  test::expect_contains(warnings[0], "online=false cannot run with a live source");
}

// online=false with a live upstream (the harness's is) says so at its first block, not only when
// a LATENCY query comes, which a live pipeline sends only after its sinks prerolled: at EOS.
TEST(LaVaeDecode, OfflineWithALiveSourceWarnsAtTheFirstBlock) {
  auto off = decoder(false);
  ASSERT_TRUE(off->h);
  ASSERT_TRUE(negotiate(*off));
  push_blocks(*off, latent_blocks(1), 0);
  const auto warnings = off->bus->take(GST_MESSAGE_WARNING);
  ASSERT_EQ(warnings.size(), 1u);
  test::expect_contains(warnings[0], "online=false cannot run with a live source");
}

// An element on its own (in liveavatarbin the bin posts the one warning itself): a property read
// when it starts, set while PLAYING, posts a warning that names it, from GStreamer's thread pool
// (so it is waited for); the same value again says nothing.
TEST(LaVaeDecode, ChangingAStartPropertyWhilePlayingWarns) {
  auto d = decoder(true);
  ASSERT_TRUE(d->h);
  auto warnings_within = [&](std::chrono::milliseconds limit) {
    std::vector<std::string> all;
    const auto until = std::chrono::steady_clock::now() + limit;
    while (all.empty() && std::chrono::steady_clock::now() < until) {
      all = d->bus->take(GST_MESSAGE_WARNING);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return all;
  };
  g_object_set(d->element(), "online", FALSE, nullptr);
  const auto warnings = warnings_within(std::chrono::seconds(5));
  ASSERT_EQ(warnings.size(), 1u);
  test::expect_contains(warnings[0], "online changed while PLAYING: it is read when the element starts");
  g_object_set(d->element(), "online", FALSE, nullptr);
  EXPECT_TRUE(warnings_within(std::chrono::milliseconds(500)).empty());
}

TEST(LaVaeDecode, NewCapsOfAnotherSizeStartANewStream) {
  auto d = decoder(true, "video/x-raw, format=RGB");
  ASSERT_TRUE(d->h);
  ASSERT_TRUE(negotiate(*d));
  push_blocks(*d, latent_blocks(1), 0);
  auto first = d->pull_all();
  const std::string bigger = "application/x-liveavatar-latent, channels=(int)16, frames=(int)3, "
                             "latent-height=(int)6, latent-width=(int)4, dtype=(string)float32";
  ASSERT_TRUE(negotiate(*d, bigger));
  at::manual_seed(3);
  GstBuffer* b = gst_buffer_new_memdup(at::randn({16, 3, 6, 4}).data_ptr(), 16 * 3 * 6 * 4 * 4);
  GST_BUFFER_PTS(b) = kBlockNs;
  ASSERT_EQ(gst_harness_push(d->h, b), GST_FLOW_OK);
  auto second = d->pull_all();
  ASSERT_EQ(second.size(), 12u);
  EXPECT_EQ(gst_buffer_get_size(second[0]), 32u * 48 * 3);
  test::expect_contains(d->src_caps(), "width=(int)32, height=(int)48");
  test::unref_all(first);
  test::unref_all(second);
}

namespace {

// The GstCudaContext in the answer of a gst.cuda.context query on `pad`
// (not its peer), or null.
GstCudaContext* context_answered_by(GstPad* pad) {
  GstQuery* q = gst_query_new_context(GST_CUDA_CONTEXT_TYPE);
  GstCudaContext* found = nullptr;
  if (gst_pad_query(pad, q)) {
    GstContext* c = nullptr;
    gst_query_parse_context(q, &c);
    if (c) gst_structure_get(gst_context_get_structure(c), GST_CUDA_CONTEXT_TYPE, GST_TYPE_CUDA_CONTEXT, &found, nullptr);
  }
  gst_query_unref(q);
  return found;
}

}  // namespace

// In NULL (before NULL->READY) the src pad answers gst.cuda.context for a
// configured CUDA device and never for the CPU.
TEST(LaVaeDecode, AnswersCudaContextQueriesInNullOnlyForACudaDevice) {
  test::ensure_gst();
  GstElement* dec = gst_element_factory_make("lavaedecode", nullptr);
  ASSERT_TRUE(dec);
  GstPad* src = gst_element_get_static_pad(dec, "src");
  EXPECT_EQ(context_answered_by(src), nullptr) << "cuda-device-id=-1";
  if (runtime::query_cuda_runtime().device_count > 0) {
    g_object_set(dec, "cuda-device-id", 0, nullptr);
    GstCudaContext* answered = context_answered_by(src);
    ASSERT_NE(answered, nullptr) << "cuda-device-id=0 in NULL";
    GstCudaContext* again = context_answered_by(src);
    EXPECT_EQ(again, answered) << "one GstCudaContext per device, shared by every answer";
    // The plugin and this test each link the glue, so each has its own wrapper object: compare
    // what they wrap, the device's primary CUDA context (the one LibTorch uses).
    GstCudaContext* ours = gst::primary_cuda_context(0);
    EXPECT_EQ(gst_cuda_context_get_handle(answered), gst_cuda_context_get_handle(ours));
    guint device_id = 99;
    g_object_get(answered, "cuda-device-id", &device_id, nullptr);
    EXPECT_EQ(device_id, 0u);
    gst_object_unref(ours);
    gst_object_unref(again);
    gst_object_unref(answered);
  }
  gst_object_unref(src);
  gst_object_unref(dec);
}

// Issue 14 item 3: a gst-launch line changes states sink first, so an nvcodec
// element downstream looks for a CUDA context (gst_cuda_ensure_element_context:
// its pads' peers, then NEED_CONTEXT, then a context of its own) while
// lavaedecode is still in NULL. It must find ours there, or nvh264enc compares
// contexts (gstnvbaseenc.c, handle_frame) and copies every frame through
// system memory. The nvcodec element is started on its own while lavaedecode
// stays in NULL; its sink pad then answers with the context it took.
TEST(LaVaeDecode, NvcodecElementStartedFirstTakesOurCudaContext) {
  if (runtime::query_cuda_runtime().device_count == 0) GTEST_SKIP() << "no CUDA device";
  test::ensure_gst();
  const char* nv = nullptr;
  for (const char* name : {"nvh264enc", "cudaconvert", "cudadownload"}) {
    if (GstElementFactory* f = gst_element_factory_find(name)) {
      gst_object_unref(f);
      nv = name;
      break;
    }
  }
  if (!nv) GTEST_SKIP() << "no nvcodec element (nvh264enc, cudaconvert, cudadownload) in this GStreamer";
  const std::string dir = test::tiny_checkpoint_dir().string();
  GstElement* p = test::parse("lavaedecode name=dec checkpoint-dir=" + dir + " cuda-device-id=0 ! queue ! " + nv +
                              " name=nv ! fakesink async=false");
  ASSERT_TRUE(p);
  GstElement* nv_element = gst_bin_get_by_name(GST_BIN(p), "nv");
  GstElement* dec = gst_bin_get_by_name(GST_BIN(p), "dec");
  // nvh264enc opens (and looks for its context) in NULL->READY, the
  // GstCudaBaseTransform ones in READY->PAUSED: PAUSED covers both.
  EXPECT_NE(gst_element_set_state(nv_element, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE) << nv;
  GstState dec_state = GST_STATE_VOID_PENDING;
  gst_element_get_state(dec, &dec_state, nullptr, 0);
  EXPECT_EQ(dec_state, GST_STATE_NULL);
  GstPad* sink = gst_element_get_static_pad(nv_element, "sink");
  GstCudaContext* theirs = context_answered_by(sink);
  ASSERT_NE(theirs, nullptr) << nv << " has no CUDA context";
  GstCudaContext* ours = gst::primary_cuda_context(0);
  EXPECT_EQ(gst_cuda_context_get_handle(theirs), gst_cuda_context_get_handle(ours))
      << nv << " made a CUDA context of its own instead of taking lavaedecode's";
  // Which one ran (an H200 has no NVENC, so nvh264enc is not registered there).
  std::printf("[nvcodec] %s, started first, holds %s CUDA context\n", nv,
              gst_cuda_context_get_handle(theirs) == gst_cuda_context_get_handle(ours) ? "lavaedecode's" : "another");
  gst_object_unref(ours);
  gst_object_unref(theirs);
  gst_object_unref(sink);
  gst_element_set_state(nv_element, GST_STATE_NULL);
  gst_object_unref(dec);
  gst_object_unref(nv_element);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}

// liveavatargen in a harness: one latent block per features block with its
// timestamps and caps, determinism per seed, prompt and image changes at the
// next block, flush and new segments, caps that do not fit, latency,
// progress; and its bad input (missing files, unreadable image, bad size).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cstring>
#include <fstream>

#include "tests/common/figure.h"
#include "tests/gst/gst_test_util.h"

using namespace la;
using la::test::expect_contains;
using la::test::Harnessed;

namespace {

constexpr GstClockTime kBlockNs = 480 * GST_MSECOND;
constexpr const char* kFeaturesCaps =
    "application/x-liveavatar-features, layers=(int)25, channels=(int)32, frames=(int)12, dtype=(string)float32";

// A PNG test picture written by GStreamer itself.
std::string write_png(const std::string& path, int width, int height, const char* pattern) {
  test::ensure_gst();
  const std::string line = "videotestsrc num-buffers=1 pattern=" + std::string(pattern) + " ! video/x-raw,width=" +
                           std::to_string(width) + ",height=" + std::to_string(height) +
                           " ! pngenc ! filesink location=" + path;
  GstElement* p = gst_parse_launch(line.c_str(), nullptr);
  EXPECT_NE(p, nullptr);
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND,
                                             static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  EXPECT_TRUE(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS);
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  return path;
}

const test::TempDir& scratch() {
  static test::TempDir* dir = new test::TempDir;
  return *dir;
}
std::string face() {
  static const std::string path = write_png(scratch().file("face.png"), 160, 120, "ball");  // 4:3
  return path;
}
std::string lora() { return (test::tiny_checkpoint_dir().parent_path() / "LiveAvatar" / "liveavatar.safetensors").string(); }

std::unique_ptr<Harnessed> generator(const std::function<void(GstElement*)>& more = [](GstElement*) {}) {
  const std::string dir = test::tiny_checkpoint_dir().string(), l = lora(), img = face();
  auto h = std::make_unique<Harnessed>("liveavatargen", [&](GstElement* e) {
    g_object_set(e, "checkpoint-dir", dir.c_str(), "lora", l.c_str(), "image", img.c_str(), "size", "128*96",
                 "prompt", "A person talking", nullptr);
    more(e);
  });
  if (h->h) gst_harness_set_src_caps_str(h->h, kFeaturesCaps);
  return h;
}

GstBuffer* features(int block, GstClockTime t0 = 0) {
  at::manual_seed(100 + block);
  const at::Tensor f = at::randn({25, 32, 12});
  GstBuffer* b = gst_buffer_new_memdup(f.data_ptr(), f.nbytes());
  GST_BUFFER_PTS(b) = t0 + block * kBlockNs;
  GST_BUFFER_DURATION(b) = kBlockNs;
  return b;
}

std::vector<uint8_t> bytes(GstBuffer* b) {
  std::vector<uint8_t> out(gst_buffer_get_size(b));
  gst_buffer_extract(b, 0, out.data(), out.size());
  return out;
}

// Pushes blocks [from, to) and returns each output's bytes.
std::vector<std::vector<uint8_t>> run(Harnessed& g, int from, int to, GstClockTime t0 = 0) {
  std::vector<std::vector<uint8_t>> out;
  for (int b = from; b < to; ++b) {
    EXPECT_EQ(gst_harness_push(g.h, features(b, t0)), GST_FLOW_OK) << "block " << b;
    GstBuffer* o = gst_harness_pull(g.h);
    out.push_back(bytes(o));
    gst_buffer_unref(o);
  }
  return out;
}

}  // namespace

TEST(LiveAvatarGen, OneLatentBlockPerFeaturesBlockWithItsTimestamps) {
  auto g = generator();
  ASSERT_TRUE(g->h);
  gint width = 0, height = 0;
  g_object_get(g->element(), "width", &width, "height", &height, nullptr);
  EXPECT_EQ(width, 128);  // 4:3 picture in a 128*96 area: 128x64 would waste area; 64-multiples give 128x64
  EXPECT_EQ(height % 64, 0);
  const GstClockTime t0 = 5 * GST_SECOND;
  for (int b = 0; b < 3; ++b) ASSERT_EQ(gst_harness_push(g->h, features(b, t0)), GST_FLOW_OK);
  auto out = g->pull_all();
  ASSERT_EQ(out.size(), 3u);
  const std::string caps = g->src_caps();
  expect_contains(caps, "application/x-liveavatar-latent");
  expect_contains(caps, "latent-height=(int)" + std::to_string(height / 8));
  expect_contains(caps, "latent-width=(int)" + std::to_string(width / 8));
  expect_contains(caps, "dtype=(string)float32");
  for (int b = 0; b < 3; ++b) {
    EXPECT_EQ(GST_BUFFER_PTS(out[b]), t0 + b * kBlockNs);
    EXPECT_EQ(GST_BUFFER_DURATION(out[b]), kBlockNs);
    EXPECT_EQ(gst_buffer_get_size(out[b]), static_cast<gsize>(16 * 3 * (height / 8) * (width / 8) * 4));
  }
  EXPECT_TRUE(GST_BUFFER_IS_DISCONT(out[0]));
  test::unref_all(out);
  const auto progress = g->bus->take_element_messages("liveavatar-progress");
  EXPECT_EQ(progress.size(), 3u);
  for (auto* s : progress) gst_structure_free(s);
}

TEST(LiveAvatarGen, SameSeedSameLatentsAnotherSeedDiffers) {
  auto a = generator(), b = generator(), c = generator([](GstElement* e) { g_object_set(e, "seed", 7ULL, nullptr); });
  const auto xa = run(*a, 0, 2), xb = run(*b, 0, 2), xc = run(*c, 0, 2);
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa[0], xc[0]);
}

TEST(LiveAvatarGen, Fp8LinearsGiveCloseButDifferentLatents) {
  auto a = generator(), b = generator([](GstElement* e) { g_object_set(e, "fp8", TRUE, nullptr); });
  const auto xa = run(*a, 0, 2), xb = run(*b, 0, 2);
  double lo = 1e9, hi = 0;  // docs/dit.md quotes the range
  for (size_t i = 0; i < xa.size(); ++i) {
    ASSERT_EQ(xa[i].size(), xb[i].size());
    EXPECT_NE(xa[i], xb[i]);
    const at::Tensor ta = at::from_blob(const_cast<uint8_t*>(xa[i].data()), {int64_t(xa[i].size() / 4)}, at::kFloat);
    const at::Tensor tb = at::from_blob(const_cast<uint8_t*>(xb[i].data()), {int64_t(xb[i].size() / 4)}, at::kFloat);
    EXPECT_LT(((ta - tb).norm() / ta.norm()).item<double>(), 0.1) << "block " << i;
    lo = std::min(lo, ((ta - tb).norm() / ta.norm()).item<double>());
    hi = std::max(hi, ((ta - tb).norm() / ta.norm()).item<double>());
  }
  la::test::record_doc_figure("fp8.gst_block.rel_l2.min", lo);
  la::test::record_doc_figure("fp8.gst_block.rel_l2.max", hi);
}

TEST(LiveAvatarGen, OffloadedTextEncoderGivesTheSameLatents) {
  auto a = generator(), b = generator([](GstElement* e) { g_object_set(e, "offload", TRUE, nullptr); });
  EXPECT_EQ(run(*a, 0, 1), run(*b, 0, 1));
  g_object_set(a->element(), "prompt", "Another scene", nullptr);
  g_object_set(b->element(), "prompt", "Another scene", nullptr);  // reloads umT5 for this
  EXPECT_EQ(run(*a, 1, 2), run(*b, 1, 2));
  EXPECT_TRUE(b->bus->take().empty());
}

TEST(LiveAvatarGen, PromptChangeWhilePlayingAppliesAtTheNextBlock) {
  auto a = generator(), b = generator();
  EXPECT_EQ(run(*a, 0, 2), run(*b, 0, 2));
  g_object_set(b->element(), "prompt", "Somebody else entirely", nullptr);
  EXPECT_NE(run(*a, 2, 3), run(*b, 2, 3));
}

TEST(LiveAvatarGen, ImageChangeWhilePlayingAppliesAtTheNextBlock) {
  auto a = generator(), b = generator();
  EXPECT_EQ(run(*a, 0, 1), run(*b, 0, 1));
  const std::string other = write_png(scratch().file("other.png"), 90, 200, "smpte");  // another aspect: cropped
  g_object_set(b->element(), "image", other.c_str(), nullptr);
  EXPECT_NE(run(*a, 1, 2), run(*b, 1, 2));
  EXPECT_TRUE(b->bus->take().empty());
}

TEST(LiveAvatarGen, FlushAndNewSegmentStartANewStream) {
  auto g = generator();
  const auto first = run(*g, 0, 2);
  g->flush();
  EXPECT_EQ(run(*g, 0, 2), first);
  EXPECT_TRUE(g->push_segment(0));
  EXPECT_EQ(run(*g, 0, 2), first);
}

TEST(LiveAvatarGen, CapsThatDoNotFitFailWithAClearMessage) {
  const std::string dir = test::tiny_checkpoint_dir().string(), img = face();
  Harnessed g("liveavatargen", [&](GstElement* e) {
    g_object_set(e, "checkpoint-dir", dir.c_str(), "image", img.c_str(), "size", "128*96", nullptr);
  });
  gst_harness_set_src_caps_str(
      g.h, "application/x-liveavatar-features, layers=(int)25, channels=(int)1024, frames=(int)12, dtype=(string)float32");
  EXPECT_EQ(gst_harness_push(g.h, features(0)), GST_FLOW_NOT_NEGOTIATED);
  const auto errors = g.bus->take();
  ASSERT_FALSE(errors.empty());
  expect_contains(errors[0], "channels=32");
  expect_contains(errors[0], "channels=1024");
}

TEST(LiveAvatarGen, LatencyAddsOneBlock) {
  auto g = generator();
  GstClockTime min = 0;
  ASSERT_TRUE(test::query_latency(g->h, 100 * GST_MSECOND, &min));
  EXPECT_EQ(min, 100 * GST_MSECOND + kBlockNs);
}

TEST(LiveAvatarGen, EosIsForwarded) {
  auto g = generator();
  run(*g, 0, 1);
  ASSERT_TRUE(gst_harness_push_event(g->h, gst_event_new_eos()));
  bool eos = false;
  while (GstEvent* ev = gst_harness_try_pull_event(g->h)) {
    eos |= GST_EVENT_TYPE(ev) == GST_EVENT_EOS;
    gst_event_unref(ev);
  }
  EXPECT_TRUE(eos);
}

// --- bad input: the element refuses to start, naming what is wrong -------------

namespace {

std::string error_going_to_paused(const std::function<void(GstElement*)>& props) {
  test::ensure_gst();
  GstElement* e = gst_element_factory_make("liveavatargen", nullptr);
  gst_object_ref_sink(e);
  props(e);
  test::BusCollector bus(e);
  const GstStateChangeReturn ret = gst_element_set_state(e, GST_STATE_PAUSED);
  auto errors = bus.take();
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
  if (ret != GST_STATE_CHANGE_FAILURE) return "(started)";
  return errors.empty() ? "(failed without an error message)" : errors[0];
}

}  // namespace

TEST(LiveAvatarGenBadInput, MissingOrWrongCheckpointDir) {
  const std::string img = face();
  expect_contains(error_going_to_paused([&](GstElement* e) { g_object_set(e, "image", img.c_str(), nullptr); }),
                  "checkpoint-dir");
  expect_contains(error_going_to_paused([&](GstElement* e) {
                    g_object_set(e, "checkpoint-dir", "/nonexistent/ckpt", "image", img.c_str(), nullptr);
                  }),
                  "/nonexistent/ckpt");
  const std::string vae_dir = test::tiny_checkpoint_dir().string() + "/google";  // a directory, not the checkpoint
  expect_contains(error_going_to_paused([&](GstElement* e) {
                    g_object_set(e, "checkpoint-dir", vae_dir.c_str(), "image", img.c_str(), nullptr);
                  }),
                  "config.json");
}

TEST(LiveAvatarGenBadInput, UnreadableImage) {
  const std::string dir = test::tiny_checkpoint_dir().string();
  const std::string text = scratch().file("not-a-picture.png");
  std::ofstream(text) << "this is text, not a PNG";
  expect_contains(error_going_to_paused([&](GstElement* e) {
                    g_object_set(e, "checkpoint-dir", dir.c_str(), "image", text.c_str(), nullptr);
                  }),
                  "cannot decode image '" + text + "'");
  expect_contains(error_going_to_paused([&](GstElement* e) {
                    g_object_set(e, "checkpoint-dir", dir.c_str(), "image", "/nonexistent/face.png", nullptr);
                  }),
                  "/nonexistent/face.png");
}

TEST(LiveAvatarGenBadInput, BadSizeAndLora) {
  const std::string dir = test::tiny_checkpoint_dir().string(), img = face();
  expect_contains(error_going_to_paused([&](GstElement* e) {
                    g_object_set(e, "checkpoint-dir", dir.c_str(), "image", img.c_str(), "size", "big", nullptr);
                  }),
                  "size 'big' must be an area like 720*400");
  expect_contains(error_going_to_paused([&](GstElement* e) {
                    g_object_set(e, "checkpoint-dir", dir.c_str(), "image", img.c_str(), "lora", img.c_str(), nullptr);
                  }),
                  img);
}

// Bad input to the elements: missing or wrong model paths, a corrupt VAE
// file, a CUDA device that is not there, out-of-range properties, malformed
// buffers. Each must give an element error that names the path or value and
// says what was expected, never a crash or a hang.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cmath>
#include <limits>
#include <type_traits>

#include "engine/runtime/cuda_runtime_info.h"
#include "tests/common/temp_dir.h"
#include "tests/gst/gst_test_util.h"

using namespace la;
using la::test::expect_contains;

namespace {

// Sets `props` on a new element, takes it to READY and returns the error
// messages it posted ("" entries when it succeeded).
std::vector<std::string> errors_going_to_ready(const char* factory,
                                               const std::function<void(GstElement*)>& props) {
  test::ensure_gst();
  GstElement* e = gst_element_factory_make(factory, nullptr);
  if (!e) {
    ADD_FAILURE() << "no element " << factory;
    return {};
  }
  gst_object_ref_sink(e);
  props(e);
  test::BusCollector bus(e);
  const GstStateChangeReturn ret = gst_element_set_state(e, GST_STATE_READY);
  auto errors = bus.take();
  if (ret != GST_STATE_CHANGE_FAILURE) errors.push_back("(went to READY)");
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
  return errors;
}

std::string only(const std::vector<std::string>& errors) {
  EXPECT_EQ(errors.size(), 1u);
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  return all;
}

}  // namespace

TEST(GstBadInput, AudioFeatWithoutModelDir) {
  expect_contains(only(errors_going_to_ready("laaudiofeat", [](GstElement*) {})), "model-dir is not set");
}

TEST(GstBadInput, AudioFeatModelDirThatDoesNotExist) {
  const auto e = only(errors_going_to_ready(
      "laaudiofeat", [](GstElement* e) { g_object_set(e, "model-dir", "/nonexistent/wav2vec2-dir", nullptr); }));
  expect_contains(e, "'/nonexistent/wav2vec2-dir' is not a directory");
  expect_contains(e, "wav2vec2-large-xlsr-53-english");
}

TEST(GstBadInput, AudioFeatModelDirWithoutTheModel) {
  test::TempDir empty;
  const auto e = only(errors_going_to_ready(
      "laaudiofeat", [&](GstElement* e) { g_object_set(e, "model-dir", empty.path().c_str(), nullptr); }));
  expect_contains(e, "cannot load wav2vec2 from model-dir '" + empty.path().string() + "'");
  expect_contains(e, "config.json");
}

TEST(GstBadInput, VaeDecodeWithNeitherCheckpointDirNorVae) {
  expect_contains(only(errors_going_to_ready("lavaedecode", [](GstElement*) {})),
                  "neither checkpoint-dir nor vae is set");
}

TEST(GstBadInput, VaeDecodeCheckpointDirThatDoesNotExist) {
  expect_contains(only(errors_going_to_ready(
                      "lavaedecode",
                      [](GstElement* e) { g_object_set(e, "checkpoint-dir", "/nonexistent/ckpt", nullptr); })),
                  "checkpoint-dir '/nonexistent/ckpt' is not a directory");
}

TEST(GstBadInput, VaeDecodeCheckpointDirWithoutTheVae) {
  test::TempDir dir;
  const auto e = only(errors_going_to_ready(
      "lavaedecode", [&](GstElement* e) { g_object_set(e, "checkpoint-dir", dir.path().c_str(), nullptr); }));
  expect_contains(e, "VAE file '" + (dir.path() / "Wan2.1_VAE.pth").string() + "' does not exist");
  expect_contains(e, "Wan2.2-S2V-14B directory that contains Wan2.1_VAE.pth");
}

TEST(GstBadInput, VaeDecodeTruncatedVaeFile) {
  test::TempDir dir;
  const std::string bytes = test::read_bytes(test::tiny_vae_file());
  const std::string cut = dir.file("Wan2.1_VAE.pth");
  test::write_bytes(cut, bytes.substr(0, bytes.size() / 2));
  const auto e = only(errors_going_to_ready("lavaedecode", [&](GstElement* e) {
    g_object_set(e, "checkpoint-dir", "/nonexistent", "vae", cut.c_str(), nullptr);  // vae wins
  }));
  expect_contains(e, "cannot load the VAE from '" + cut + "'");
}

TEST(GstBadInput, VaeDecodeGivenTheWrongFile) {
  // wav2vec2's weights are a valid checkpoint, but not a VAE: the key is named.
  const std::string wrong = test::tiny_wav2vec2_dir() + "/model.safetensors";
  const auto e = only(
      errors_going_to_ready("lavaedecode", [&](GstElement* e) { g_object_set(e, "vae", wrong.c_str(), nullptr); }));
  expect_contains(e, wrong);
  expect_contains(e, "encoder.conv1.weight");
}

TEST(GstBadInput, CudaDeviceThatDoesNotExist) {
  const int devices = runtime::query_cuda_runtime().device_count;
  test::TempDir dir;
  const std::string image = test::write_test_png(dir.file("face.png"), 64, 64, "ball");
  for (const std::string factory : {"laaudiofeat", "lavaedecode", "liveavatargen", "liveavatarbin"}) {
    SCOPED_TRACE(factory);
    const auto e = only(errors_going_to_ready(factory.c_str(), [&](GstElement* e) {
      g_object_set(e, "cuda-device-id", devices, nullptr);  // one past the last
      if (factory == "laaudiofeat")
        g_object_set(e, "model-dir", test::tiny_wav2vec2_dir().c_str(), nullptr);
      else
        g_object_set(e, "checkpoint-dir", test::tiny_checkpoint_dir().c_str(), nullptr);
      if (factory == "liveavatargen" || factory == "liveavatarbin") g_object_set(e, "image", image.c_str(), nullptr);
    }));
    expect_contains(e, "cuda-device-id=" + std::to_string(devices) + " but");
    expect_contains(e, "use cuda-device-id=-1 to run on the CPU");
  }
}

namespace {

// GObject refuses a value outside the GParamSpec's range with a warning and
// keeps the old one. Returns whether the warning came and the value stayed.
template <typename T>
bool refused(GstElement* e, const char* name, GType type, T bad) {
  static int warnings;
  warnings = 0;
  const guint handler = g_log_set_handler(
      "GLib-GObject", G_LOG_LEVEL_WARNING, [](const gchar*, GLogLevelFlags, const gchar*, gpointer) { ++warnings; },
      nullptr);
  GValue before = G_VALUE_INIT, v = G_VALUE_INIT, after = G_VALUE_INIT;
  g_value_init(&before, type);
  g_object_get_property(G_OBJECT(e), name, &before);
  g_value_init(&v, type);
  if constexpr (std::is_same_v<T, int>) g_value_set_int(&v, bad);
  if constexpr (std::is_same_v<T, double>) g_value_set_double(&v, bad);
  g_object_set_property(G_OBJECT(e), name, &v);
  g_value_init(&after, type);
  g_object_get_property(G_OBJECT(e), name, &after);
  g_log_remove_handler("GLib-GObject", handler);
  const bool same = gst_value_compare(&before, &after) == GST_VALUE_EQUAL;
  g_value_unset(&before);
  g_value_unset(&v);
  g_value_unset(&after);
  return warnings == 1 && same;
}

}  // namespace

TEST(GstBadInput, OutOfRangePropertiesAreRefusedByTheirSpecs) {
  test::ensure_gst();
  GstElement* feat = gst_element_factory_make("laaudiofeat", nullptr);
  GstElement* vae = gst_element_factory_make("lavaedecode", nullptr);
  ASSERT_TRUE(feat && vae);
  EXPECT_TRUE(refused(feat, "context", G_TYPE_DOUBLE, -0.5));
  EXPECT_TRUE(refused(feat, "context", G_TYPE_DOUBLE, 61.0));
  EXPECT_TRUE(refused(feat, "lookahead", G_TYPE_DOUBLE, -0.01));
  EXPECT_TRUE(refused(feat, "lookahead", G_TYPE_DOUBLE, 10.5));
  EXPECT_TRUE(refused(feat, "cuda-device-id", G_TYPE_INT, -2));
  EXPECT_TRUE(refused(vae, "cuda-device-id", G_TYPE_INT, -2));
  EXPECT_TRUE(refused(vae, "cuda-device-id", G_TYPE_INT, 1024));
  // In range is accepted (the check above can fail).
  EXPECT_FALSE(refused(feat, "context", G_TYPE_DOUBLE, 4.0));
  gst_object_unref(feat);
  gst_object_unref(vae);
}

TEST(GstBadInput, UnknownModeIsAParseError) {
  test::ensure_gst();
  GError* error = nullptr;
  GstElement* p = gst_parse_launch("fakesrc ! laaudiofeat mode=realtime ! fakesink", &error);
  ASSERT_NE(error, nullptr);
  expect_contains(error->message, "realtime");
  g_clear_error(&error);
  if (p) gst_object_unref(p);
}

namespace {

std::unique_ptr<test::Harnessed> feat() {
  auto f = std::make_unique<test::Harnessed>("laaudiofeat", [](GstElement* e) {
    g_object_set(e, "model-dir", test::tiny_wav2vec2_dir().c_str(), nullptr);
  });
  return f;
}

}  // namespace

TEST(GstBadInput, NonFiniteAudioIsAnElementError) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto f = feat();
    ASSERT_TRUE(f->h);
    gst_harness_set_src_caps_str(f->h, "audio/x-raw, format=F32LE, rate=16000, channels=1, layout=interleaved");
    std::vector<float> x(8000, 0.1f);
    x[4000] = bad;
    EXPECT_EQ(gst_harness_push(f->h, gst_buffer_new_memdup(x.data(), x.size() * 4)), GST_FLOW_ERROR);
    expect_contains(only(f->bus->take()), "NaN or infinite samples");
  }
}

TEST(GstBadInput, AudioBufferThatIsNotWholeSamples) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  gst_harness_set_src_caps_str(f->h, "audio/x-raw, format=F32LE, rate=16000, channels=1, layout=interleaved");
  EXPECT_EQ(gst_harness_push(f->h, gst_buffer_new_allocate(nullptr, 10, nullptr)), GST_FLOW_ERROR);
  expect_contains(only(f->bus->take()), "audio buffer of 10 bytes is not a whole number of F32 samples");
}

TEST(GstBadInput, AudioWithoutCaps) {
  auto f = feat();
  ASSERT_TRUE(f->h);
  EXPECT_EQ(gst_harness_push(f->h, gst_buffer_new_allocate(nullptr, 400, nullptr)), GST_FLOW_NOT_NEGOTIATED);
  expect_contains(only(f->bus->take()), "audio arrived before its caps");
}

TEST(GstBadInput, LatentBufferOfTheWrongSize) {
  auto d = std::make_unique<test::Harnessed>("lavaedecode", [](GstElement* e) {
    g_object_set(e, "checkpoint-dir", test::tiny_checkpoint_dir().c_str(), nullptr);
  });
  ASSERT_TRUE(d->h);
  gst_harness_set_src_caps_str(d->h, "application/x-liveavatar-latent, channels=16, frames=3, latent-height=4, "
                                     "latent-width=6, dtype=bfloat16");
  EXPECT_EQ(gst_harness_push(d->h, gst_buffer_new_allocate(nullptr, 16 * 3 * 4 * 6 * 4, nullptr)), GST_FLOW_ERROR);
  const auto e = only(d->bus->take());
  expect_contains(e, "buffer holds 4608 bytes, the caps' block [16,3,4,6] BFloat16 needs 2304");
  EXPECT_EQ(gst_harness_buffers_in_queue(d->h), 0u);
}

namespace {

// The first ERROR of a launch line (parsed as gst-launch-1.0 parses it: a caps string between
// two elements is a filtered link) taken to PLAYING: "" at EOS, else the error.
std::string first_error_of_line(const std::string& line) {
  GstElement* p = test::parse(line);
  if (!p) return "(no pipeline)";
  const std::string error = test::run_to_eos(p, 60 * GST_SECOND);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  return error;
}

}  // namespace

// Caps between our elements that do not fit (another model's shapes, a hand-written capsfilter)
// are refused in the element's own words naming the field, also where a launch line links them
// with a caps filter (docs/elements.md, "Negotiation errors"), not with a bare "can't handle caps"
// at linking. In-process: gst-launch-1.0 1.22 can hang after an error posted before its main loop
// runs (docs/troubleshooting.md), which this line's error always is.
TEST(GstBadInput, CapsThatDoNotFitOurElementsNameTheFieldInALaunchLine) {
  const std::string dir = test::tiny_checkpoint_dir().string();
  test::TempDir tmp;
  const std::string image = test::write_test_png(tmp.file("face.png"), 64, 64, "ball");
  expect_contains(first_error_of_line("filesrc location=/dev/zero num-buffers=1 blocksize=4096 ! "
                                      "application/x-liveavatar-latent,channels=8,frames=3,latent-height=4,"
                                      "latent-width=4,dtype=float32 ! lavaedecode checkpoint-dir=" +
                                      dir + " ! fakesink"),
                  "channels=8 but the VAE");
  expect_contains(first_error_of_line("filesrc location=/dev/zero num-buffers=1 blocksize=4096 ! "
                                      "application/x-liveavatar-features,layers=25,channels=32,frames=10,"
                                      "dtype=float32 ! liveavatargen checkpoint-dir=" +
                                      dir + " image=" + image + " size=64*64 ! fakesink"),
                  "frames=10");
}

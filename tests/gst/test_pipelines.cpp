// Whole pipelines through gst_parse_launch: an audio file to an MP4 with the
// avatar's video and the audio (checked with the discoverer and by counting
// frames), online and offline decode giving the same frames, backpressure
// from a slow sink, and flat memory over long streams (in child processes,
// so each run has its own peak RSS).
#include <gtest/gtest.h>

#include <gst/app/gstappsink.h>
#include <gst/pbutils/pbutils.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gst/cuda/gstcudamemory.h>

#include "engine/runtime/cuda_runtime_info.h"
#include "tests/gst/gst_test_util.h"

using namespace la;

namespace {

std::string png() {
  static test::TempDir* dir = new test::TempDir;
  static const std::string path = [] {
    const std::string p = dir->file("face.png");
    test::ensure_gst();
    GstElement* e = gst_parse_launch(("videotestsrc num-buffers=1 pattern=ball ! video/x-raw,width=96,height=96 ! "
                                      "pngenc ! filesink location=" + p).c_str(), nullptr);
    gst_element_set_state(e, GST_STATE_PLAYING);
    GstBus* bus = gst_element_get_bus(e);
    gst_message_unref(gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND,
                                                 static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR)));
    gst_object_unref(bus);
    gst_element_set_state(e, GST_STATE_NULL);
    gst_object_unref(e);
    return p;
  }();
  return path;
}

// liveavatarbin with the tiny checkpoint at 64x64.
std::string avatar(const std::string& extra = "") {
  const auto dir = test::tiny_checkpoint_dir();
  return "liveavatarbin name=avatar checkpoint-dir=" + dir.string() + " lora=" +
         (dir.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string() + " image=" + png() +
         " size=64*64 " + extra;
}

// Runs a pipeline to EOS or an error and leaves it there (appsinks keep their
// samples; the caller sets it to NULL). Returns the first error ("" on
// success); `on_message` sees every element message.
std::string run(GstElement* p, const std::function<void(GstMessage*)>& on_message = {},
                GstClockTime timeout = 600 * GST_SECOND) {
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  std::string error;
  for (;;) {
    GstMessage* m = gst_bus_timed_pop_filtered(
        bus, timeout, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT));
    if (!m) {
      error = "timeout";
      break;
    }
    const auto type = GST_MESSAGE_TYPE(m);
    if (type == GST_MESSAGE_ELEMENT && on_message) on_message(m);
    if (type == GST_MESSAGE_ERROR) {
      GError* err = nullptr;
      gst_message_parse_error(m, &err, nullptr);
      error = err ? err->message : "error";
      g_clear_error(&err);
    }
    gst_message_unref(m);
    if (type != GST_MESSAGE_ELEMENT) break;
  }
  gst_object_unref(bus);
  return error;
}

GstElement* parse(const std::string& line) {
  test::ensure_gst();
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(line.c_str(), &err);
  EXPECT_TRUE(p && !err) << line << ": " << (err ? err->message : "");
  g_clear_error(&err);
  return p;
}

// Every sample of an appsink after EOS, as bytes.
std::vector<std::vector<uint8_t>> drain(GstElement* pipeline, const char* sink_name) {
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), sink_name);
  std::vector<std::vector<uint8_t>> out;
  while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 0)) {
    GstBuffer* b = gst_sample_get_buffer(s);
    out.emplace_back(gst_buffer_get_size(b));
    gst_buffer_extract(b, 0, out.back().data(), out.back().size());
    gst_sample_unref(s);
  }
  gst_object_unref(sink);
  return out;
}

int64_t peak_rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

// The three elements with capsfilters between them: `features` and `latents`
// are the caps features to force ("" = what the elements pick).
std::string three_elements(const std::string& features, const std::string& latents, const std::string& decoder) {
  const auto dir = test::tiny_checkpoint_dir();
  auto feature = [](const char* type, const std::string& f) {
    return std::string(" ! capsfilter caps=\"") + type + (f.empty() ? "" : "(" + f + ")") + "\"";
  };
  return "audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! laaudiofeat model-dir=" +
         (dir / "wav2vec2-large-xlsr-53-english").string() + feature("application/x-liveavatar-features", features) +
         " ! liveavatargen name=gen checkpoint-dir=" + dir.string() + " lora=" +
         (dir.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string() + " image=" + png() + " size=64*64" +
         feature("application/x-liveavatar-latent", latents) + " ! queue ! lavaedecode name=dec checkpoint-dir=" +
         dir.string() + " " + decoder;
}

// The caps feature negotiated on an element's pad ("" for system memory).
std::string pad_feature(GstElement* pipeline, const char* element, const char* pad_name) {
  GstElement* e = gst_bin_get_by_name(GST_BIN(pipeline), element);
  GstPad* pad = gst_element_get_static_pad(e, pad_name);
  GstCaps* caps = gst_pad_get_current_caps(pad);
  std::string feature;
  if (caps) {
    GstCapsFeatures* f = gst_caps_get_features(caps, 0);
    if (f && !gst_caps_features_is_equal(f, GST_CAPS_FEATURES_MEMORY_SYSTEM_MEMORY))
      feature = gst_caps_features_get_nth(f, 0);
    gst_caps_unref(caps);
  }
  gst_object_unref(pad);
  gst_object_unref(e);
  return feature;
}

}  // namespace

TEST(Pipelines, AudioFileToMp4WithVideoAndAudioInSync) {
  test::TempDir dir;
  const std::string wav = dir.file("tone.wav"), mp4 = dir.file("avatar.mp4");
  // 2.0 s of audio: ceil(2.0 / 0.48) = 5 blocks = 60 frames.
  GstElement* w = parse("audiotestsrc num-buffers=20 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 ! "
                        "wavenc ! filesink location=" + wav);
  ASSERT_EQ(run(w), "");
  gst_element_set_state(w, GST_STATE_NULL);
  gst_object_unref(w);
  GstElement* p = parse("filesrc location=" + wav + " ! wavparse ! tee name=t t. ! queue ! " + avatar() +
                        " ! videoconvert ! openh264enc ! h264parse ! queue ! mux. "
                        "t. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! audioconvert ! lamemp3enc ! "
                        "mpegaudioparse ! queue ! mux. mp4mux name=mux ! filesink location=" + mp4);
  ASSERT_EQ(run(p), "");
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);

  GError* err = nullptr;
  GstDiscoverer* d = gst_discoverer_new(30 * GST_SECOND, &err);
  ASSERT_TRUE(d) << (err ? err->message : "");
  gchar* uri = gst_filename_to_uri(mp4.c_str(), nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, &err);
  g_free(uri);
  ASSERT_TRUE(info) << (err ? err->message : "");
  GList* video = gst_discoverer_info_get_video_streams(info);
  GList* audio = gst_discoverer_info_get_audio_streams(info);
  EXPECT_EQ(g_list_length(video), 1u);
  EXPECT_EQ(g_list_length(audio), 1u);
  if (video) {
    auto* v = GST_DISCOVERER_VIDEO_INFO(video->data);
    EXPECT_EQ(gst_discoverer_video_info_get_width(v), 64u);
    EXPECT_EQ(gst_discoverer_video_info_get_framerate_num(v), 25u);
  }
  const GstClockTime duration = gst_discoverer_info_get_duration(info);
  EXPECT_GE(duration, 2400 * GST_MSECOND - 50 * GST_MSECOND) << "5 blocks of video";
  EXPECT_LE(duration, 2400 * GST_MSECOND + 50 * GST_MSECOND);
  gst_discoverer_stream_info_list_free(video);
  gst_discoverer_stream_info_list_free(audio);
  gst_discoverer_info_unref(info);
  g_object_unref(d);

  // Frame count and the first timestamps of both streams.
  GstElement* demux = parse("filesrc location=" + mp4 + " ! qtdemux name=d d.video_0 ! queue ! appsink name=v "
                            "sync=false d.audio_0 ! queue ! appsink name=a sync=false");
  gst_element_set_state(demux, GST_STATE_PLAYING);
  GstElement* vsink = gst_bin_get_by_name(GST_BIN(demux), "v");
  GstElement* asink = gst_bin_get_by_name(GST_BIN(demux), "a");
  int frames = 0;
  GstClockTime first_video = GST_CLOCK_TIME_NONE, first_audio = GST_CLOCK_TIME_NONE;
  while (GstSample* s = gst_app_sink_pull_sample(GST_APP_SINK(vsink))) {
    if (!frames++) first_video = GST_BUFFER_PTS(gst_sample_get_buffer(s));
    gst_sample_unref(s);
  }
  if (GstSample* s = gst_app_sink_pull_sample(GST_APP_SINK(asink))) {
    first_audio = GST_BUFFER_PTS(gst_sample_get_buffer(s));
    gst_sample_unref(s);
  }
  gst_object_unref(vsink);
  gst_object_unref(asink);
  gst_element_set_state(demux, GST_STATE_NULL);
  gst_object_unref(demux);
  EXPECT_EQ(frames, 60) << "12 frames per 0.48 s block";
  EXPECT_EQ(first_video, 0u);
  EXPECT_EQ(first_audio, 0u);
}

TEST(Pipelines, OnlineAndOfflineDecodeGiveIdenticalFrames) {
  std::vector<std::vector<uint8_t>> frames[2];
  for (int online = 0; online < 2; ++online) {
    GstElement* p = parse("audiotestsrc num-buffers=12 samplesperbuffer=1600 wave=ticks ! " +
                          avatar(std::string("online=") + (online ? "true" : "false")) +
                          " ! video/x-raw,format=RGB ! appsink name=out sync=false max-buffers=0 wait-on-eos=false");
    ASSERT_EQ(run(p), "");
    frames[online] = drain(p, "out");
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  EXPECT_EQ(frames[1].size(), 36u);  // 1.2 s -> 3 blocks
  EXPECT_TRUE(frames[0] == frames[1]) << "online and offline frames differ";
}


TEST(Pipelines, TensorMemoryBetweenOurElementsGivesTheSameFrames) {
  // On the CPU our elements pick system memory; the tensor-memory caps
  // (which keep CUDA tensors on the GPU) are taken when downstream asks for them.
  const std::string source = "audiotestsrc num-buffers=12 samplesperbuffer=1600 wave=ticks ! ";
  const std::string sink = " ! video/x-raw,format=RGB ! appsink name=out sync=false max-buffers=0 wait-on-eos=false";
  std::vector<std::vector<uint8_t>> frames[2];
  for (int tensor = 0; tensor < 2; ++tensor) {
    const std::string f = tensor ? "memory:LiveAvatarTensor" : "";
    GstElement* p = parse(source + three_elements(f, f, "") + sink);
    ASSERT_EQ(run(p), "");
    EXPECT_EQ(pad_feature(p, "gen", "sink"), f);
    EXPECT_EQ(pad_feature(p, "dec", "sink"), f);
    frames[tensor] = drain(p, "out");
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  EXPECT_EQ(frames[0].size(), 36u);
  EXPECT_TRUE(frames[0] == frames[1]) << "tensor-memory and system-memory blocks gave different frames";
}

TEST(Pipelines, CudaMemoryOutputOnTheGpu) {
  if (runtime::query_cuda_runtime().device_count == 0) GTEST_SKIP() << "no CUDA device";
  const std::string source = "audiotestsrc num-buffers=12 samplesperbuffer=1600 wave=ticks ! ";
  std::vector<std::vector<uint8_t>> frames[2];
  for (int cuda = 0; cuda < 2; ++cuda) {
    GstElement* p = parse(source + three_elements("", "", "cuda-device-id=0") +
                          (cuda ? " ! capsfilter caps=\"video/x-raw(memory:CUDAMemory),format=RGBA\"" :
                                  " ! video/x-raw,format=RGBA") +
                          " ! appsink name=out sync=false max-buffers=0 wait-on-eos=false");
    GstElement* gen = gst_bin_get_by_name(GST_BIN(p), "gen");  // laaudiofeat stays on the CPU
    g_object_set(gen, "cuda-device-id", 0, nullptr);
    gst_object_unref(gen);
    ASSERT_EQ(run(p), "");
    // The GPU elements keep features and latents on the device by default.
    EXPECT_EQ(pad_feature(p, "dec", "sink"), "memory:LiveAvatarTensor");
    EXPECT_EQ(pad_feature(p, "dec", "src"), cuda ? "memory:CUDAMemory" : "");
    GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "out");
    GstSample* first = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 0);
    ASSERT_TRUE(first);
    EXPECT_EQ(gst_is_cuda_memory(gst_buffer_peek_memory(gst_sample_get_buffer(first), 0)), cuda == 1);
    std::vector<uint8_t> bytes(gst_buffer_get_size(gst_sample_get_buffer(first)));
    gst_buffer_extract(gst_sample_get_buffer(first), 0, bytes.data(), bytes.size());  // a download for CUDA memory
    gst_sample_unref(first);
    gst_object_unref(sink);
    frames[cuda] = drain(p, "out");
    frames[cuda].insert(frames[cuda].begin(), bytes);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  ASSERT_EQ(frames[0].size(), 36u);
  ASSERT_EQ(frames[1].size(), 36u);
  // Same model, same device: the frames may differ only by kernel
  // nondeterminism in bf16, not by layout (a stride bug moves whole rows).
  double diff = 0;
  size_t n = 0;
  for (size_t i = 0; i < 36; ++i)
    for (size_t b = 0; b < frames[0][i].size(); ++b, ++n) diff += std::abs(int(frames[0][i][b]) - int(frames[1][i][b]));
  std::printf("[cuda-memory] mean |system - CUDAMemory| = %.4f over %zu bytes\n", diff / n, n);
  EXPECT_LT(diff / n, 0.5);
}

TEST(Pipelines, SlowSinkBlocksTheGeneratorInsteadOfQueueing) {
  // The sink takes 40 ms per frame (real time); the tiny generator is much faster,
  // so without backpressure it would run ahead by many blocks.
  GstElement* p = parse("audiotestsrc num-buffers=96 samplesperbuffer=1600 ! " + avatar() +
                        " ! identity sleep-time=40000 ! fakesink sync=false");
  uint64_t generated = 0, decoded = 0, max_ahead = 0;
  ASSERT_EQ(run(p, [&](GstMessage* m) {
              const GstStructure* s = gst_message_get_structure(m);
              if (!gst_structure_has_name(s, "liveavatar-progress")) return;
              guint64 blocks = 0;
              gst_structure_get_uint64(s, "blocks", &blocks);
              const std::string src = GST_OBJECT_NAME(GST_MESSAGE_SRC(m));
              if (src == "gen") generated = blocks;
              if (src == "decode") decoded = blocks;
              max_ahead = std::max(max_ahead, generated - std::min(generated, decoded));
            }),
            "");
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  EXPECT_EQ(generated, 20u);  // 9.6 s
  EXPECT_EQ(decoded, 20u);
  // The queue holds ~1 s of latents (2-3 blocks), one block is in the decoder and one
  // being pushed by the generator; without backpressure it would reach 20.
  EXPECT_LE(max_ahead, 6u) << "the generator ran ahead of the sink";
  std::printf("[backpressure] generator at most %llu blocks ahead of the decoder; peak RSS %.1f MiB\n",
              (unsigned long long)max_ahead, peak_rss_kib() / 1024.0);
}

// Child of FlatMemory: runs LA_FLAT_MEMORY_BLOCKS blocks with online=LA_FLAT_MEMORY_ONLINE
// and prints its peak RSS. Skipped when run directly.
TEST(FlatMemoryChild, Run) {
  const char* blocks = std::getenv("LA_FLAT_MEMORY_BLOCKS");
  const char* online = std::getenv("LA_FLAT_MEMORY_ONLINE");
  if (!blocks || !online) GTEST_SKIP() << "run by FlatMemory";
  // 16 kHz, 1600-sample buffers: 4.8 buffers per block.
  const int buffers = std::atoi(blocks) * 48 / 10;
  GstElement* p = parse("audiotestsrc num-buffers=" + std::to_string(buffers) + " samplesperbuffer=1600 ! " +
                        avatar(std::string("online=") + online) + " ! fakesink sync=false");
  ASSERT_EQ(run(p), "");
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  std::printf("LA_PEAK_RSS_KIB=%lld\n", (long long)peak_rss_kib());
}

TEST(FlatMemory, OnlineDecodePeakRssDoesNotGrowWithStreamLength) {
  auto child = [](int blocks, bool online) {
    std::ostringstream cmd;
    cmd << "LA_FLAT_MEMORY_BLOCKS=" << blocks << " LA_FLAT_MEMORY_ONLINE=" << (online ? "true" : "false")
        << " /proc/" << getpid() << "/exe --gtest_filter=FlatMemoryChild.Run 2>&1";
    FILE* f = popen(cmd.str().c_str(), "r");
    char line[512];
    long long kib = -1;
    while (f && fgets(line, sizeof line, f))
      if (std::strncmp(line, "LA_PEAK_RSS_KIB=", 16) == 0) kib = std::atoll(line + 16);
    if (f) pclose(f);
    return kib;
  };
  const long long on50 = child(50, true), on500 = child(500, true);
  const long long off50 = child(50, false), off500 = child(500, false);
  std::printf("[flat-memory] peak RSS online: 50 blocks %.1f MiB, 500 blocks %.1f MiB (ratio %.3f); "
              "offline: 50 blocks %.1f MiB, 500 blocks %.1f MiB (ratio %.3f)\n",
              on50 / 1024.0, on500 / 1024.0, double(on500) / on50, off50 / 1024.0, off500 / 1024.0,
              double(off500) / off50);
  ASSERT_GT(on50, 0);
  ASSERT_GT(on500, 0);
  EXPECT_LE(double(on500) / on50, 1.05);
  EXPECT_GT(double(off500) / off50, double(on500) / on50) << "offline decode keeps every latent and decodes at EOS";
}

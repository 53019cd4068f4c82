// The example scripts of examples/, run as a user runs them (bash, the
// script's own gst-launch-1.0 line or tool), with the tiny checkpoint at
// 64x64, into the real servers of the live-output tests: nginx-rtmp, an SRT
// listener, rtspsrc against the RTSP example, the WebRTC loopback. What they
// deliver is read back and counted. tests/gst/test_live_outputs.cpp tests the
// same kinds of pipeline built in the test; this file tests that the scripts
// users copy still work.
#include <gtest/gtest.h>

#include <gst/app/gstappsink.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/gst/child_process.h"
#include "tests/gst/gst_test_util.h"
#include "tests/gst/live_servers.h"

using namespace la;
using test::ChildProcess;
using test::Container;

namespace {

// A 2.00 s WAV (16 kHz mono, a tone) is 32000 samples: ceil(32000 / 7680) = 5 blocks of 12 frames.
constexpr double kSpeechSeconds = 2.0;
constexpr int kSpeechFrames = 60;
// Each script runs in about 3-7 s here; a hung one fails after this (the whole program has 600 s).
constexpr std::chrono::seconds kScriptLimit{60};

std::filesystem::path examples_dir() {
  const char* src = std::getenv("LA_SOURCE_DIR");
  return std::filesystem::path(src ? src : ".") / "examples";
}

// What every example takes first: the tiny checkpoint, its LoRA, a picture, and a WAV of speech.
struct Inputs {
  explicit Inputs(const test::TempDir& dir)
      : ckpt(test::tiny_checkpoint_dir().string()),
        lora((test::tiny_checkpoint_dir().parent_path() / "LiveAvatar" / "liveavatar.safetensors").string()),
        image(test::write_test_png(dir.file("face.png"), 96, 96, "ball")),
        wav(dir.file("speech.wav")) {
    EXPECT_EQ(test::write_tone_wav(wav, 20, "wave=sine freq=220"), "");
  }
  std::string ckpt, lora, image, wav;
};

// examples/NAME run with bash, its output in DIR/NAME.out.
std::unique_ptr<ChildProcess> example(const test::TempDir& dir, const std::string& name,
                                      const std::vector<std::string>& args,
                                      std::vector<std::pair<std::string, std::string>> env = {}) {
  std::vector<std::string> argv = {"/bin/bash", (examples_dir() / name).string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<ChildProcess>(argv, dir.file(name + ".out"), std::move(env));
}

// Runs it to its end (at most `limit`); its exit status, or -1 (and it is stopped) if it ran
// longer or died of a signal.
int run_to_end(ChildProcess& p, std::chrono::seconds limit) {
  const std::string why = p.start();
  if (!why.empty()) {
    ADD_FAILURE() << why;
    return -1;
  }
  const std::optional<int> status = p.wait(limit);
  if (!status) {
    ADD_FAILURE() << "still running after " << limit.count() << " s:\n" << p.output();
    p.stop(SIGINT);
    return -1;
  }
  return WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
}

void expect_every_frame(const test::ReadBack& r, int frames) {
  EXPECT_EQ(r.frames, frames) << "25 fps over whole 0.48 s blocks";
  EXPECT_EQ(r.last_video - r.first_video, static_cast<GstClockTime>(frames - 1) * 40 * GST_MSECOND)
      << "no frame missing in between";
}

}  // namespace

// Run without its arguments, each script prints its usage to stderr and exits with status 2.
TEST(Examples, WithoutArgumentsEachSaysHowToCallIt) {
  test::TempDir dir;
  for (const char* name : {"wav-to-mp4.sh", "live-rtmp.sh", "live-srt.sh", "live-rtsp.sh", "live-webrtc.sh",
                           "text-to-rtmp.sh"}) {
    SCOPED_TRACE(name);
    auto p = example(dir, name, {});
    EXPECT_EQ(run_to_end(*p, std::chrono::seconds(10)), 2) << p->output();
    test::expect_contains(p->output(), std::string("examples/") + name);
  }
}

TEST(Examples, WavToMp4GivesEveryFrameAndTheAudioInSync) {
  test::TempDir dir;
  const Inputs in(dir);
  const std::string mp4 = dir.file("avatar.mp4");
  auto p = example(dir, "wav-to-mp4.sh", {in.ckpt, in.lora, in.image, in.wav, mp4, "64*64"});
  ASSERT_EQ(run_to_end(*p, kScriptLimit), 0) << p->output();
  GstElement* file = test::reader("filesrc location=" + mp4, Container::kMp4);
  ASSERT_TRUE(file);
  EXPECT_EQ(test::run_to_eos(file, 30 * GST_SECOND), "");
  const test::ReadBack r = test::collect(file);
  r.print("wav-to-mp4.sh", "the MP4");
  expect_every_frame(r, kSpeechFrames);
  test::expect_audio_in_sync(r, 16000, kSpeechSeconds);  // the WAV's rate: lamemp3enc keeps it
}

namespace {

// examples/live-rtmp.sh (or text-to-rtmp.sh) into nginx, which records the stream; the recording
// read back. `args` come after the checkpoint, LoRA and picture, and the URL.
test::ReadBack publish_to_nginx(const test::TempDir& dir, const Inputs& in, const std::string& script,
                                const std::vector<std::string>& args) {
  const auto rec = dir.path() / "rec";
  std::filesystem::create_directories(rec);
  test::Nginx server(dir.path());
  const std::string why = server.start("record all; record_path " + rec.string() + ";");
  EXPECT_EQ(why, "") << "the RTMP server did not start";
  if (!why.empty()) return {};
  std::vector<std::string> all = {in.ckpt, in.lora, in.image, server.url("avatar")};
  all.insert(all.end(), args.begin(), args.end());
  auto p = example(dir, script, all);
  EXPECT_EQ(run_to_end(*p, kScriptLimit), 0) << p->output() << server.diagnostics();
  // nginx closes the recording when the publisher's stream goes.
  EXPECT_TRUE(server.wait_for_log("deleteStream", std::chrono::seconds(10))) << server.diagnostics();
  server.stop();
  const std::string flv = (rec / "avatar.flv").string();
  EXPECT_TRUE(std::filesystem::exists(flv)) << "no recording " << flv << "\n" << server.diagnostics();
  GstElement* file = test::reader("filesrc location=" + flv, Container::kFlv);
  if (!file) return {};
  EXPECT_EQ(test::run_to_eos(file, 30 * GST_SECOND), "");
  return test::collect(file);
}

}  // namespace

TEST(Examples, LiveRtmpGivesNginxEveryFrameAndTheAudioInSync) {
  test::TempDir dir;
  const Inputs in(dir);
  const test::ReadBack r = publish_to_nginx(dir, in, "live-rtmp.sh", {in.wav, "64*64"});
  r.print("live-rtmp.sh", "nginx's recording");
  expect_every_frame(r, kSpeechFrames);
  test::expect_audio_in_sync(r, 44100, kSpeechSeconds);
}

// espeak speaks the text in real time: the video covers the speech, in whole blocks.
TEST(Examples, TextToRtmpMakesTheAvatarSayIt) {
  test::ensure_gst();
  GstElementFactory* espeak = gst_element_factory_find("espeak");
  ASSERT_TRUE(espeak) << "no espeak element: apt-get install gstreamer1.0-espeak";
  gst_object_unref(espeak);
  test::TempDir dir;
  const Inputs in(dir);
  const test::ReadBack r = publish_to_nginx(dir, in, "text-to-rtmp.sh", {"Hello. I am a live avatar.", "64*64"});
  r.print("text-to-rtmp.sh", "nginx's recording");
  ASSERT_GT(r.frames, 0);
  EXPECT_EQ(r.frames % 12, 0) << "whole blocks";
  EXPECT_GT(r.audio_s(), 1.0) << "the sentence was spoken";
  // The last block is padded past the speech: less than one block (0.48 s) over it, plus MP3's
  // whole frames.
  EXPECT_NEAR(r.frames / 25.0, r.audio_s(), 0.6);
  EXPECT_EQ(r.last_video - r.first_video, static_cast<GstClockTime>(r.frames - 1) * 40 * GST_MSECOND);
}

TEST(Examples, LiveSrtGivesTheListenerEveryFrameAndTheAudioInSync) {
  test::TempDir dir;
  const Inputs in(dir);
  const int port = test::free_loopback_port(SOCK_DGRAM);
  ASSERT_GT(port, 0);
  // The listener (a reader started before the example calls it).
  GstElement* live = test::reader("srtsrc uri=\"" + test::srt_url(port, "listener") + "\"", Container::kMpegTs);
  ASSERT_TRUE(live);
  const std::string why = test::start_srt_server(live);
  ASSERT_EQ(why, "") << "the SRT server did not start";
  auto p = example(dir, "live-srt.sh", {in.ckpt, in.lora, in.image, test::srt_url(port, "caller"), in.wav, "64*64"});
  EXPECT_EQ(run_to_end(*p, kScriptLimit), 0) << p->output();
  // The reader gets EOS when the caller closes the connection.
  EXPECT_EQ(test::run_to_eos(live, 30 * GST_SECOND), "");
  const test::ReadBack r = test::collect(live);
  r.print("live-srt.sh", "the listener");
  EXPECT_EQ(r.frames, kSpeechFrames) << p->output();
  test::expect_audio_in_sync(r, 44100, kSpeechSeconds);
}

// The RTSP example serves an endless live tone: a client plays two blocks, then Ctrl-C (SIGINT)
// ends the server cleanly.
TEST(Examples, LiveRtspServesAClientAndStopsOnCtrlC) {
  test::TempDir dir;
  const Inputs in(dir);
  const int port = test::free_loopback_port();
  ASSERT_GT(port, 0);
  auto p = example(dir, "live-rtsp.sh", {in.ckpt, in.lora, in.image, std::to_string(port), "64*64"});
  ASSERT_EQ(p->start(), "");
  ASSERT_TRUE(p->wait_for_output("la-rtsp-server: serving rtsp://127.0.0.1:" + std::to_string(port) + "/avatar",
                                 std::chrono::seconds(30)))
      << p->output();
  GstElement* client = test::playing_rtsp_client("rtsp://127.0.0.1:" + std::to_string(port) + "/avatar");
  ASSERT_TRUE(client);
  EXPECT_EQ(test::pull_video_frames(client, 24, 30 * GST_SECOND), 24) << p->output();
  p->signal(SIGINT);
  const std::optional<int> status = p->wait(std::chrono::seconds(10));
  gst_element_set_state(client, GST_STATE_NULL);
  gst_object_unref(client);
  ASSERT_TRUE(status) << "still serving 10 s after SIGINT:\n" << p->output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << test::describe_wait_status(status) << "\n" << p->output();
}

// The WebRTC example plays the WAV through a sender and a receiver webrtcbin; the receiver's
// sinks replaced as its header says, for a machine without a display or sound.
TEST(Examples, LiveWebrtcReceivesEveryFrame) {
  test::TempDir dir;
  const Inputs in(dir);
  auto p = example(dir, "live-webrtc.sh", {in.ckpt, in.lora, in.image, in.wav, "64*64"},
                   {{"VIDEO_SINK", "fakesink"}, {"AUDIO_SINK", "fakesink"}});
  ASSERT_EQ(run_to_end(*p, kScriptLimit), 0) << p->output();
  test::expect_contains(p->output(), "la-webrtc-loopback: received " + std::to_string(kSpeechFrames) + " video frames");
}

// Live outputs into real servers (meson suite `live`): a live audio source
// through liveavatarbin with H.264 + MP3 in FLV, published with rtmp2sink
// into nginx with Debian's RTMP module (libnginx-mod-rtmp) on a free loopback
// port. A client plays the stream live (rtmp2src, subscribed before the
// publisher starts) and the server records it; both are decoded and checked:
// the video frame count, the audio, and the A/V start offset. A server that
// cannot start FAILS the test (LA_NGINX overrides the nginx binary).
// SRT: the same publisher into MPEG-TS, sent with srtsink (caller) to a reader
// whose srtsrc is the listener on a free loopback UDP port (GStreamer's own
// SRT server: no separate daemon); a listener that cannot start FAILS it too.
// RTSP: our server program la-rtsp-server (tools/rtsp_server, on
// gst-rtsp-server; LA_RTSP_SERVER) serves the same pipeline with H.264 + Opus
// over RTP on a free loopback port; rtspsrc reads it back. A server that
// cannot start FAILS the test.
// WebRTC: the same media as RTSP into a webrtcbin, received by a second
// webrtcbin in this process (offer/answer and ICE candidates handed over
// directly, ICE on 127.0.0.1 only). A missing element FAILS the test, naming
// the Debian package.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/common/figure.h"
#include "tests/gst/gst_test_util.h"
#include "tests/gst/live_servers.h"
#include "tools/webrtc_loopback/webrtc_link.h"

using namespace la;
using test::ChildProcess;
using test::collect;
using test::expect_audio_in_sync;
using test::free_loopback_port;
using test::Nginx;
using test::ReadBack;
using test::reader;
using test::srt_url;
using test::start_srt_server;

namespace {

std::string png(const test::TempDir& dir) { return test::write_test_png(dir.file("face.png"), 96, 96, "ball"); }

using test::parse;

// Runs to EOS or an error; returns the error ("" on EOS, "timeout").
std::string run(GstElement* p, GstClockTime timeout) { return test::run_to_eos(p, timeout); }


// Published audio: 40 buffers of 1600 samples at 16 kHz = 4.0 s. laaudiofeat
// pads the last 0.48 s block (7680 samples): ceil(64000 / 7680) = 9 blocks of
// 12 frames = 108 frames at 25 fps.
constexpr int kAudioBuffers = 40, kSamplesPerBuffer = 1600, kRate = 16000, kBlockSamples = 7680;
constexpr int kExpectedFrames = (kAudioBuffers * kSamplesPerBuffer + kBlockSamples - 1) / kBlockSamples * 12;

// The launch line of every output's publisher: kAudioBuffers of a live tone
// through liveavatarbin (tiny checkpoint, 64x64) into H.264, then `video`
// (the rest of the video branch); the same audio, behind a queue of up to
// 5 s (the video branch needs its latency of audio ahead before it emits a
// block), resampled into `audio`; then `tail` (the muxer and sink, or the
// webrtcbin). As in examples/live-*.sh.
std::string publisher(const test::TempDir& dir, const std::string& video, const std::string& audio,
                      const std::string& tail) {
  const auto ckpt = test::tiny_checkpoint_dir();
  return "audiotestsrc is-live=true wave=sine num-buffers=" + std::to_string(kAudioBuffers) +
         " samplesperbuffer=" + std::to_string(kSamplesPerBuffer) + " ! audio/x-raw,rate=" + std::to_string(kRate) +
         ",channels=1 ! tee name=t t. ! queue ! liveavatarbin checkpoint-dir=" + ckpt.string() + " lora=" +
         (ckpt.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string() + " image=" + png(dir) +
         " size=64*64 ! videoconvert ! openh264enc ! h264parse ! " + video +
         " t. ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0 ! audioconvert ! audioresample ! " +
         audio + " " + tail;
}

// Into a muxer: the video's queue holds up to 5 s too, as a live muxer holds
// what comes early for the pipeline's latency (docs/live-streaming.md).
constexpr const char* kVideoToMux = "queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0 ! mux.";
constexpr const char* kMp3ToMux = "audio/x-raw,rate=44100 ! lamemp3enc ! mpegaudioparse ! queue ! mux.";
// The muxers' own latency (2 s), as in examples/lib/publish-muxed.sh: the avatar's elements
// report no processing time before they have timed a block, and a live muxer that waits only for
// the pipeline's latency wrote the first video frames with the timestamps of audio already written
// (docs/live-streaming.md).
constexpr const char* kMuxLatency = " latency=2000000000";

}  // namespace

// The failure path: a server that cannot start is reported with its log
// (the RTMP test then fails on it, it never skips).
TEST(LiveOutputs, NginxThatCannotStartIsReportedWithItsLog) {
  test::TempDir dir;
  Nginx server(dir.path());
  const std::string why = server.start("", "this is not an nginx directive;\n");
  EXPECT_NE(why, "");
  EXPECT_NE(why.find("unknown directive"), std::string::npos) << why;
}

TEST(LiveOutputs, RtmpThroughNginxGivesEveryFrameAndTheAudioInSync) {
  test::TempDir dir;
  const auto rec = dir.path() / "rec";
  std::filesystem::create_directories(rec);
  Nginx server(dir.path());
  const std::string why = server.start("record all; record_path " + rec.string() + ";");
  ASSERT_EQ(why, "") << "the RTMP server did not start";

  const std::string url = "rtmp://127.0.0.1:" + std::to_string(server.port()) + "/live/avatar";
  // FLV carries MP3 at 44.1 kHz (or 22.05 / 11.025).
  GstElement* pub = parse(publisher(dir, kVideoToMux, kMp3ToMux,
                                    std::string("flvmux name=mux streamable=true") + kMuxLatency +
                                        " ! rtmp2sink location=" + url));
  ASSERT_TRUE(pub);
  // A client playing the stream live, subscribed before the publisher starts
  // (a live application drops what comes before a subscriber joins; nginx
  // holds an idle stream for a player that comes first).
  GstElement* live = reader("rtmp2src location=" + url);
  ASSERT_TRUE(live);
  ASSERT_NE(gst_element_set_state(live, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_TRUE(server.wait_for_log("play: name='avatar'", std::chrono::seconds(10))) << server.diagnostics();

  const auto t0 = std::chrono::steady_clock::now();
  const std::string error = run(pub, 180 * GST_SECOND);
  const double publish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  gst_element_set_state(pub, GST_STATE_NULL);
  gst_object_unref(pub);
  EXPECT_EQ(error, "") << server.diagnostics();
  // The player gets EOS when the publisher's stream goes (rtmp2src: unpublish).
  const std::string live_error = run(live, 30 * GST_SECOND);
  EXPECT_EQ(live_error, "") << server.diagnostics();
  const ReadBack client = collect(live);
  // nginx closes the recording when the publisher's stream goes.
  EXPECT_TRUE(server.wait_for_log("deleteStream", std::chrono::seconds(10))) << server.diagnostics();
  server.stop();
  const std::string flv = (rec / "avatar.flv").string();
  ASSERT_TRUE(std::filesystem::exists(flv)) << "no recording " << flv << "\n" << server.diagnostics();
  GstElement* file = reader("filesrc location=" + flv);
  ASSERT_TRUE(file);
  ASSERT_EQ(run(file, 60 * GST_SECOND), "");
  const ReadBack recording = collect(file);

  const double published_s = kAudioBuffers * kSamplesPerBuffer / static_cast<double>(kRate);
  std::printf("rtmp: published %.2f s of audio in %.1f s (expected %d frames)\n", published_s, publish_s,
              kExpectedFrames);
  // The live client may miss the stream's very last frame (here 3 runs in 18
  // ended at 4.240 s instead of 4.280 s, 107 frames) while the recording of
  // the same run has all 108: it is lost between nginx and the player when the
  // publisher leaves (unpublish ends the play at once); the cause was not
  // pinned down. The client is allowed that one frame, at the end only.
  struct Case {
    const char* name;
    const ReadBack& r;
    int min_frames;
  };
  for (const Case& c : {Case{"live client (rtmp2src)", client, kExpectedFrames - 1},
                        Case{"server recording", recording, kExpectedFrames}}) {
    const char* name = c.name;
    const ReadBack& r = c.r;
    SCOPED_TRACE(name);
    r.print("rtmp", name);
    EXPECT_GE(r.frames, c.min_frames) << "25 fps over whole 0.48 s blocks";
    EXPECT_LE(r.frames, kExpectedFrames);
    EXPECT_EQ(r.first_video, 0u);
    EXPECT_EQ(r.last_video, GST_CLOCK_TIME_IS_VALID(r.first_video) ? r.first_video + (r.frames - 1) * 40 * GST_MSECOND
                                                                    : GST_CLOCK_TIME_NONE)
        << "no frame missing in between";
    // MP3 frames of 1152 samples and the encoder's delay: a little over 4.0 s.
    expect_audio_in_sync(r, 44100, published_s);
  }
  test::record_doc_figure("live.rtmp.frames", recording.frames);
  test::record_doc_figure("live.rtmp.av_offset_ms", client.offset_ms());
}

// The failure path: an SRT listener whose port is taken does not start and
// says why (the SRT test then fails on it, it never skips).
TEST(LiveOutputs, SrtListenerThatCannotStartIsReported) {
  const int port = free_loopback_port(SOCK_DGRAM);
  ASSERT_GT(port, 0);
  // The port taken by a plain UDP socket (no SO_REUSEADDR): the listener's bind fails.
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  GstElement* p = reader("srtsrc uri=\"" + srt_url(port, "listener") + "\"", test::Container::kMpegTs);
  ASSERT_TRUE(p);
  const std::string why = start_srt_server(p);
  close(fd);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  EXPECT_NE(why, "");
  std::printf("srt: taken port %d: %s\n", port, why.c_str());
}

TEST(LiveOutputs, SrtGivesEveryFrameAndTheAudioInSync) {
  test::TempDir dir;
  const int port = free_loopback_port(SOCK_DGRAM);
  ASSERT_GT(port, 0);
  // The server: the reader, listening on 127.0.0.1:port, started before the
  // publisher (a live SRT stream has nothing to replay for a late reader). It
  // decodes the stream live and also writes the bytes it received to a file.
  const std::string ts = dir.file("received.ts");
  GstElement* live = reader("srtsrc uri=\"" + srt_url(port, "listener") +
                                "\" ! tee name=rec ! queue ! filesink sync=false async=false location=" + ts + " rec.",
                            test::Container::kMpegTs);
  ASSERT_TRUE(live);
  const std::string why = start_srt_server(live);
  if (!why.empty()) {
    gst_element_set_state(live, GST_STATE_NULL);
    gst_object_unref(live);
  }
  ASSERT_EQ(why, "") << "the SRT server did not start";

  // As the RTMP publisher, into MPEG-TS: SRT's live mode sends each buffer as
  // one message of at most 1316 bytes, so the muxer emits 7 TS packets
  // (7 × 188 = 1316 bytes) a buffer (alignment=7); with whole buffers the
  // reader gets a truncated, undecodable stream.
  GstElement* pub = parse(publisher(dir, kVideoToMux, kMp3ToMux,
                                    std::string("mpegtsmux name=mux alignment=7") + kMuxLatency + " ! srtsink uri=\"" +
                                        srt_url(port, "caller") + "\""));
  ASSERT_TRUE(pub);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string error = run(pub, 180 * GST_SECOND);
  const double publish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // srtsink has handed everything to SRT at EOS, but closing the connection
  // drops what is still in flight (live mode: no linger) and the reader's
  // 125 ms latency buffer (without this wait the reader got 104 of the 108
  // frames): the publisher stays connected a moment first.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  gst_element_set_state(pub, GST_STATE_NULL);
  gst_object_unref(pub);
  EXPECT_EQ(error, "");
  // The reader gets EOS when the caller closes the connection.
  const std::string live_error = run(live, 30 * GST_SECOND);
  EXPECT_EQ(live_error, "");
  const ReadBack client = collect(live);
  GstElement* file = reader("filesrc location=" + ts, test::Container::kMpegTs);
  ASSERT_TRUE(file);
  ASSERT_EQ(run(file, 60 * GST_SECOND), "");
  const ReadBack recording = collect(file);

  const double published_s = kAudioBuffers * kSamplesPerBuffer / static_cast<double>(kRate);
  std::printf("srt: published %.2f s of audio in %.1f s (expected %d frames)\n", published_s, publish_s,
              kExpectedFrames);
  // The live reader's timestamps are tsdemux's clock recovery against the
  // receiver's clock (a live source): MPEG-TS's 90 kHz PTS mapped through a
  // skew estimate that follows the bursty arrival (4 s of media published in
  // about 7 s), so frames come 36-40 ms apart and the last one comes early
  // (about 40 ms in 5 runs of 5 here, once 40.16 ms): its span is allowed
  // two frames. Its frame count, audio and A/V offset are exact; the spacing is
  // checked exactly on the received bytes read back from the file (MPEG-TS
  // timestamps start at the muxer's 125 ms offset there, not 0).
  struct Case {
    const char* name;
    const ReadBack& r;
    GstClockTime span_tolerance;
  };
  for (const Case& c : {Case{"live reader (srtsrc listener)", client, 80 * GST_MSECOND},
                        Case{"received bytes, from the file", recording, 0}}) {
    const char* name = c.name;
    const ReadBack& r = c.r;
    SCOPED_TRACE(name);
    r.print("srt", name);
    EXPECT_EQ(r.frames, kExpectedFrames) << "25 fps over whole 0.48 s blocks";
    ASSERT_TRUE(GST_CLOCK_TIME_IS_VALID(r.first_video) && GST_CLOCK_TIME_IS_VALID(r.first_audio));
    EXPECT_NEAR(static_cast<double>(r.last_video - r.first_video), (r.frames - 1) * 40.0 * GST_MSECOND,
                static_cast<double>(c.span_tolerance) + GST_MSECOND / 10)  // PTS: 90 kHz ticks
        << "no frame missing in between";
    expect_audio_in_sync(r, 44100, published_s);
  }
  test::record_doc_figure("live.srt.frames", client.frames);
  test::record_doc_figure("live.srt.av_offset_ms", client.offset_ms());
}

namespace {

// la-rtsp-server (LA_RTSP_SERVER, set by meson) as a child process, its stdout
// and stderr in DIR/rtsp-server.out; stopped by the destructor (SIGTERM, then
// SIGKILL), and killed with the test process if that crashes.
class RtspServer {
 public:
  // `gst_debug`: GST_DEBUG for the server process (its log goes to the same file).
  explicit RtspServer(std::filesystem::path dir, std::string gst_debug = "")
      : out_((dir / "rtsp-server.out").string()), gst_debug_(std::move(gst_debug)) {}

  // Starts it on 127.0.0.1:`port` with `args`; returns "" once it prints its
  // "serving" line, or why not (its exit status and output).
  std::string start(int port, const std::vector<std::string>& args) {
    const char* bin = std::getenv("LA_RTSP_SERVER");
    if (!bin || access(bin, X_OK) != 0) return "no la-rtsp-server (LA_RTSP_SERVER is not set or not executable)";
    port_ = port;
    std::vector<std::string> argv = {bin, "--address", "127.0.0.1", "--port", std::to_string(port), "--mount", "/avatar"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::pair<std::string, std::string>> env;
    if (!gst_debug_.empty()) env.emplace_back("GST_DEBUG", gst_debug_);
    process_.emplace(argv, out_, env);
    if (std::string why = process_->start(); !why.empty()) return why;
    // It loads the models (its media's READY copy) before it listens.
    if (process_->wait_for_output("la-rtsp-server: serving rtsp://", std::chrono::seconds(20))) return "";
    if (!process_->running())
      return "la-rtsp-server exited (" + test::describe_wait_status(process_->status()) +
             ") before serving on port " +
             std::to_string(port) + ":\n" + output();
    stop();
    return "la-rtsp-server did not serve on 127.0.0.1:" + std::to_string(port) + " within 20 s:\n" + output();
  }

  void stop() {
    if (process_) process_->stop(SIGTERM);
  }

  std::string output() const { return test::read_bytes(out_); }
  std::string url() const { return "rtsp://127.0.0.1:" + std::to_string(port_) + "/avatar"; }
  int exit_status() const { return process_ ? process_->exit_status() : -1; }

 private:
  std::string out_, gst_debug_;
  std::optional<ChildProcess> process_;
  int port_ = -1;
};

}  // namespace

// The failure path: la-rtsp-server on a port that is taken exits with status
// 1 and says why (the RTSP test then fails on it, it never skips).
TEST(LiveOutputs, RtspServerThatCannotListenIsReported) {
  test::TempDir dir;
  const int port = free_loopback_port();
  ASSERT_GT(port, 0);
  // The port taken by a listening socket: the server's bind fails (its
  // SO_REUSEADDR does not let two sockets share a listening port).
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  RtspServer server(dir.path());
  const std::string why =
      server.start(port, {"--launch", "( audiotestsrc is-live=true ! opusenc ! rtpopuspay name=pay0 )"});
  close(fd);
  EXPECT_NE(why, "");
  EXPECT_EQ(server.exit_status(), 1) << why;
  EXPECT_NE(why.find("la-rtsp-server: cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos) << why;
  std::printf("rtsp: taken port %d: %s\n", port, why.c_str());
}

// A bad file fails the server before it serves (it loads the models first), not each client that
// connects: a missing image, then a missing LoRA, each named, exit status 1.
TEST(LiveOutputs, RtspServerWithABadFileFailsBeforeServing) {
  test::TempDir dir;
  const auto ckpt = test::tiny_checkpoint_dir();
  const std::string lora = (ckpt.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string();
  const std::string missing = (dir.path() / "missing.png").string();
  struct Case {
    std::string lora, image, named;
  };
  for (const Case& c : {Case{lora, missing, "image '" + missing + "' does not exist"},
                        Case{missing + ".safetensors", png(dir), "lora '" + missing + ".safetensors' does not exist"}}) {
    SCOPED_TRACE(c.named);
    RtspServer server(dir.path());
    const std::string why = server.start(free_loopback_port(), {"--checkpoint-dir", ckpt.string(), "--lora", c.lora,
                                                                "--image", c.image, "--size", "64*64"});
    EXPECT_EQ(server.exit_status(), 1) << why;
    EXPECT_NE(why.find("la-rtsp-server: the media cannot start: " + c.named), std::string::npos) << why;
    EXPECT_EQ(server.output().find("la-rtsp-server: serving"), std::string::npos) << why;
  }
}

TEST(LiveOutputs, RtspGivesEveryFrameAndTheAudioInSync) {
  test::TempDir dir;
  const int port = free_loopback_port();
  ASSERT_GT(port, 0);
  const auto ckpt = test::tiny_checkpoint_dir();
  // The server's media: the RTMP publisher's live tone and liveavatarbin, with
  // H.264 (rtph264pay) and Opus at 48 kHz (rtpopuspay); --seconds 4 gives the
  // tone 40 buffers of 1600 samples at 16 kHz, so the media ends with EOS
  // (RTCP BYE: rtspsrc ends with EOS too).
  RtspServer server(dir.path(), "lamodelcache:4");  // its model cache's log: each load and each share
  const std::string why = server.start(
      port, {"--checkpoint-dir", ckpt.string(), "--lora",
             (ckpt.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string(), "--image", png(dir), "--size",
             "64*64", "--seconds", std::to_string(kAudioBuffers * kSamplesPerBuffer / kRate)});
  ASSERT_EQ(why, "") << "the RTSP server did not start";

  // The client, over TCP (RTP interleaved in the RTSP connection: nothing is
  // lost). rtspsrc's pads come as the SDP's streams: each branch picks its own
  // by caps. buffer-mode=none: the output timestamps are the RTP timestamps
  // from the first packet on, and rtpbin aligns the two streams with the RTCP
  // sender reports (lip sync). In the default mode (slave) the jitterbuffer
  // follows the arrival times, which come in bursts (a block of 12 frames at a
  // time, 4 s of media in about 7 s), and the 108 frames spanned 4.56 s
  // instead of 4.28 s in a run here: the count is the same, the spacing is not
  // the stream's.
  GstElement* client = parse(
      "rtspsrc location=" + server.url() + " protocols=tcp latency=200 buffer-mode=none name=src "
      "src. ! application/x-rtp,media=video ! queue ! rtph264depay ! h264parse ! openh264dec ! "
      "appsink name=v sync=false max-buffers=0 wait-on-eos=false "
      "src. ! application/x-rtp,media=audio ! queue ! rtpopusdepay ! opusdec ! audioconvert ! "
      "audio/x-raw,format=S16LE ! appsink name=a sync=false max-buffers=0 wait-on-eos=false");
  ASSERT_TRUE(client);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string error = run(client, 180 * GST_SECOND);
  const double play_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(error, "") << server.output();
  const ReadBack r = collect(client);
  server.stop();
  // The server loaded every model once, before it listened (its READY copy of the media); the
  // media made for the client shared them.
  const std::string log = server.output();
  auto count = [&](const std::string& text) {
    size_t n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  };
  for (const char* model : {"la::models::S2vDit", "la::models::WanVae", "la::models::Umt5Encoder",
                            "la::models::Wav2Vec2"}) {
    EXPECT_EQ(count(std::string("loading ") + model + " "), 1u) << model << "\n" << log;
    EXPECT_GE(count(std::string("sharing the loaded ") + model + " "), 1u) << model << "\n" << log;
  }

  const double published_s = kAudioBuffers * kSamplesPerBuffer / static_cast<double>(kRate);
  std::printf("rtsp: served %.2f s of audio, played in %.1f s (expected %d frames)\n", published_s, play_s,
              kExpectedFrames);
  r.print("rtsp", "client (rtspsrc)");
  EXPECT_EQ(r.frames, kExpectedFrames) << "25 fps over whole 0.48 s blocks";
  ASSERT_TRUE(GST_CLOCK_TIME_IS_VALID(r.first_video) && GST_CLOCK_TIME_IS_VALID(r.first_audio));
  // H.264's RTP clock is 90 kHz: 40 ms is 3600 ticks, so the span is 4.28 s
  // when the client keeps the sender's media timing. It does not always: the
  // client's rtpbin maps RTP time to the sender's wall clock with the RTCP
  // sender reports, and this server produces the tiny model's 4 s in about
  // 6 s, so later frames may be shifted by that lag (0.46 s and 0.74 s seen,
  // all 108 frames there; the count is exact). Hence only a lower bound: the
  // frames are not squeezed into less than 108 frames' worth.
  const double span = static_cast<double>(r.last_video - r.first_video);
  EXPECT_GE(span, (r.frames - 1) * 40.0 * GST_MSECOND - GST_MSECOND / 10.0) << "frames missing in between";
  expect_audio_in_sync(r, 48000, published_s);
  test::record_doc_figure("live.rtsp.frames", r.frames);
  test::record_doc_figure("live.rtsp.av_offset_ms", r.offset_ms());
}

// SIGTERM (as Ctrl-C) while a client plays the endless live media: the server takes its media's
// pipeline to NULL before it returns, and exits with status 0. Before, main returned with the
// avatar's threads still decoding, and exit() crashed (SIGSEGV, 3 of 4 tries by hand). The
// trained miniature at 128x128, whose decoder is busy most of each block on this CPU (the tiny
// model's rarely is, and never crashed the old server here). Three rounds.
TEST(LiveOutputs, RtspServerStopsCleanlyWhileAClientPlays) {
  const char* src = std::getenv("LA_SOURCE_DIR");
  const std::filesystem::path miniature = std::filesystem::path(src ? src : ".") / "models" / "miniature";
  ASSERT_TRUE(std::filesystem::exists(miniature / "face.png")) << miniature;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    test::TempDir dir;
    const int port = free_loopback_port();
    ASSERT_GT(port, 0);
    RtspServer server(dir.path());
    const std::string why = server.start(
        port, {"--checkpoint-dir", (miniature / "Wan2.2-S2V-14B").string(), "--lora",
               (miniature / "LiveAvatar" / "liveavatar.safetensors").string(), "--image",
               (miniature / "face.png").string(), "--size", "128*128"});
    ASSERT_EQ(why, "") << "the RTSP server did not start";
    GstElement* client = test::playing_rtsp_client(server.url());
    ASSERT_TRUE(client);
    // A whole block decoded and sent: the server's pipeline is mid-stream.
    EXPECT_EQ(test::pull_video_frames(client, 12, 60 * GST_SECOND), 12) << server.output();
    server.stop();  // SIGTERM with the client still playing
    EXPECT_EQ(server.exit_status(), 0) << "la-rtsp-server did not exit cleanly:\n" << server.output();
    gst_element_set_state(client, GST_STATE_NULL);
    gst_object_unref(client);
  }
}

// la-webrtc-loopback (LA_WEBRTC_LOOPBACK, set by meson) with a missing image exits with status 1
// and the element's message naming the file. It used to blame the ICE agent ("is
// gstreamer1.0-nice installed?") for any pipeline that did not start.
TEST(LiveOutputs, WebRtcLoopbackWithABadFileNamesIt) {
  const char* bin = std::getenv("LA_WEBRTC_LOOPBACK");
  ASSERT_TRUE(bin && access(bin, X_OK) == 0) << "LA_WEBRTC_LOOPBACK is not set or not executable";
  test::TempDir dir;
  const auto ckpt = test::tiny_checkpoint_dir();
  const std::string missing = (dir.path() / "missing.png").string();
  const std::string cmd = "timeout 120 " + std::string(bin) + " --checkpoint-dir " + ckpt.string() + " --lora " +
                          (ckpt.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string() + " --image " +
                          missing + " --size 64*64 --seconds 1 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[1024];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  EXPECT_NE(out.find("image '" + missing + "' does not exist"), std::string::npos) << out;
  EXPECT_EQ(out.find("gstreamer1.0-nice"), std::string::npos) << out;
}

// WebRTC: the publisher's webrtcbin sends to a second webrtcbin in this
// process; the offer/answer and the ICE candidates are handed over directly
// (tools/webrtc_loopback/webrtc_link.h, shared with la-webrtc-loopback), ICE
// on 127.0.0.1 only.
TEST(LiveOutputs, WebRtcGivesEveryFrameAndTheAudioInSync) {
  // What it needs, by Debian package: a missing element fails the test.
  struct Needed {
    const char* element;
    const char* package;
  };
  for (const Needed& n : {Needed{"webrtcbin", "gstreamer1.0-plugins-bad"}, Needed{"nicesrc", "gstreamer1.0-nice"},
                          Needed{"nicesink", "gstreamer1.0-nice"}, Needed{"dtlssrtpenc", "gstreamer1.0-plugins-bad"},
                          Needed{"srtpenc", "gstreamer1.0-plugins-bad"}, Needed{"openh264enc", "gstreamer1.0-plugins-bad"},
                          Needed{"openh264dec", "gstreamer1.0-plugins-bad"}, Needed{"rtph264pay", "gstreamer1.0-plugins-good"},
                          Needed{"rtpopuspay", "gstreamer1.0-plugins-good"}, Needed{"opusenc", "gstreamer1.0-plugins-base"},
                          Needed{"opusdec", "gstreamer1.0-plugins-base"}}) {
    test::ensure_gst();
    GstElementFactory* f = gst_element_factory_find(n.element);
    ASSERT_TRUE(f) << "no GStreamer element " << n.element << ": install the Debian package " << n.package
                   << " (scripts/deps.sh)";
    gst_object_unref(f);
  }
  test::TempDir dir;
  // As the RTSP server's media (H.264 + Opus at 48 kHz), payloaded into
  // webrtcbin. The video payloader is named: the frames it gets are counted.
  GstElement* pub = parse(publisher(dir, "rtph264pay name=vpay pt=96 config-interval=-1 ! queue ! send.",
                                    "audio/x-raw,rate=48000 ! opusenc ! rtpopuspay pt=97 ! queue ! send.",
                                    "webrtcbin name=send bundle-policy=max-bundle"));
  ASSERT_TRUE(pub);
  GstElement* send = gst_bin_get_by_name(GST_BIN(pub), "send");
  GstElement* vpay = gst_bin_get_by_name(GST_BIN(pub), "vpay");
  ASSERT_TRUE(send && vpay);
  std::atomic<int> frames_sent{0};
  GstPad* vpay_sink = gst_element_get_static_pad(vpay, "sink");
  gst_pad_add_probe(vpay_sink, GST_PAD_PROBE_TYPE_BUFFER, [](GstPad*, GstPadProbeInfo*, gpointer n) {
    ++*static_cast<std::atomic<int>*>(n);
    return GST_PAD_PROBE_OK;
  }, &frames_sent, nullptr);
  gst_object_unref(vpay_sink);
  gst_object_unref(vpay);

  // The receiver: a webrtcbin alone; each stream it gets is decoded into an
  // appsink (v, a) as its pad comes.
  GstElement* rx = gst_pipeline_new("receiver");
  GstElement* recv = gst_element_factory_make("webrtcbin", "recv");
  ASSERT_TRUE(recv);
  g_object_set(recv, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  gst_bin_add(GST_BIN(rx), recv);
  // As the RTSP client: buffer-mode=none, each stream's timestamps are its RTP
  // timestamps from the first packet on, aligned by the RTCP sender reports.
  // (In the default mode, slave, the jitterbuffer follows the arrival times,
  // which come in bursts of a block.)
  GstElement* rtpbin = gst_bin_get_by_name(GST_BIN(recv), "rtpbin");
  ASSERT_TRUE(rtpbin) << "webrtcbin has no child named rtpbin";
  gst_util_set_object_arg(G_OBJECT(rtpbin), "buffer-mode", "none");
  gst_object_unref(rtpbin);
  la::webrtc::Branches branches;
  branches.video = "queue ! rtph264depay ! h264parse ! openh264dec name=decoded ! "
                   "appsink name=v sync=false max-buffers=0 wait-on-eos=false";
  branches.audio = "queue ! rtpopusdepay ! opusdec name=decoded ! audioconvert ! audio/x-raw,format=S16LE ! "
                   "appsink name=a sync=false max-buffers=0 wait-on-eos=false";
  branches.connect(recv, rx);
  std::optional<la::webrtc::Link> link;
  link.emplace(send, recv);
  EXPECT_EQ(link->streams(), 2);

  ASSERT_NE(gst_element_set_state(rx, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_NE(gst_element_set_state(pub, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  // The publisher's end: the link keeps EOS out of webrtcbin and posts its
  // message once both streams have had EOS. The media waits until both ends
  // are connected (ICE and DTLS): 30 s at most for that.
  GstBus* bus = gst_element_get_bus(pub);
  std::string error;
  double connect_s = -1;
  for (;;) {
    GstMessage* m = gst_bus_timed_pop_filtered(bus, GST_SECOND / 10,
                                               static_cast<GstMessageType>(GST_MESSAGE_APPLICATION | GST_MESSAGE_ERROR));
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (connect_s < 0 && link->connected()) connect_s = s;
    if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      error = test::message_text(m);
    } else if (m && !gst_structure_has_name(gst_message_get_structure(m), la::webrtc::Link::kEosMessage)) {
      gst_message_unref(m);
      continue;
    }
    if (m) {
      gst_message_unref(m);
      break;
    }
    if (!link->error().empty()) break;
    if (connect_s < 0 && s > 30) {
      error = "not connected after 30 s (offer/answer " + std::string(link->negotiated() ? "done" : "not done") + ")";
      break;
    }
    if (s > 180) {
      error = "timeout";
      break;
    }
  }
  gst_object_unref(bus);
  const double publish_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The last packets are then still on their way and in the receiver's
  // jitterbuffer (200 ms): the publisher stays connected a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const std::vector<std::string> candidates = link->candidates();
  const std::string link_error = link->error();
  const bool negotiated = link->negotiated();
  gst_element_set_state(pub, GST_STATE_NULL);
  gst_element_set_state(rx, GST_STATE_PAUSED);
  link.reset();
  gst_object_unref(send);
  gst_object_unref(pub);
  EXPECT_EQ(error, "");
  EXPECT_EQ(link_error, "");
  EXPECT_TRUE(negotiated);
  {
    std::lock_guard<std::mutex> lock(branches.mutex);
    EXPECT_TRUE(branches.errors.empty()) << branches.errors.front();
    EXPECT_EQ(branches.linked, 2) << "a video and an audio stream at the receiver";
  }
  // Loopback only: every candidate either side offered is on 127.0.0.1.
  int sender_candidates = 0, receiver_candidates = 0;
  for (const std::string& c : candidates) {
    std::printf("webrtc: %s\n", c.c_str());
    (c.rfind("sender: ", 0) == 0 ? sender_candidates : receiver_candidates)++;
    EXPECT_EQ(la::webrtc::candidate_address(c.substr(c.find(": ") + 2)), "127.0.0.1") << c;
  }
  EXPECT_GT(sender_candidates, 0);
  EXPECT_GT(receiver_candidates, 0);
  const ReadBack r = collect(rx);

  const double published_s = kAudioBuffers * kSamplesPerBuffer / static_cast<double>(kRate);
  std::printf("webrtc: connected after %.2f s; published %.2f s of audio in %.1f s, %d frames sent (expected %d "
              "frames)\n", connect_s, published_s, publish_s, frames_sent.load(), kExpectedFrames);
  r.print("webrtc", "receiver (webrtcbin)");
  EXPECT_EQ(frames_sent.load(), kExpectedFrames);
  EXPECT_EQ(r.frames, kExpectedFrames) << "25 fps over whole 0.48 s blocks";
  EXPECT_EQ(r.first_video, 0u);
  EXPECT_EQ(r.last_video, GST_CLOCK_TIME_IS_VALID(r.first_video) ? r.first_video + (r.frames - 1) * 40 * GST_MSECOND
                                                                  : GST_CLOCK_TIME_NONE)
      << "40 ms apart, no frame missing in between";
  expect_audio_in_sync(r, 48000, published_s);
  test::record_doc_figure("live.webrtc.frames", r.frames);
  test::record_doc_figure("live.webrtc.av_offset_ms", r.offset_ms());
}

// The real servers of the live-output tests and what reads their streams back
// (tests/gst/test_live_outputs.cpp, tests/gst/test_examples.cpp): nginx with
// Debian's RTMP module on a free loopback port, GStreamer's own SRT listener,
// and readers that demux and decode FLV or MPEG-TS into appsinks. A server
// that cannot start is reported with why (the tests then FAIL, never skip).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gst/app/gstappsink.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/gst/child_process.h"
#include "tests/gst/gst_test_util.h"

namespace la::test {

// A free TCP (or, with SOCK_DGRAM, UDP) port on 127.0.0.1: bound to port 0,
// read, closed.
inline int free_loopback_port(int type = SOCK_STREAM) {
  const int fd = socket(AF_INET, type, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

inline bool port_accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

inline std::string nginx_binary() {
  if (const char* e = std::getenv("LA_NGINX")) return e;
  for (const char* p : {"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"})
    if (access(p, X_OK) == 0) return p;
  return "";
}

// nginx with an RTMP server on a free loopback port, as a child process in
// the foreground (daemon off, one process), everything in `dir`; stopped by
// the destructor. `start()` returns "" or why it did not come up (with
// nginx's error log).
class Nginx {
 public:
  explicit Nginx(std::filesystem::path dir) : dir_(std::move(dir)) {}
  ~Nginx() { stop(); }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;

  // `extra_rtmp_app` goes into `application live { ... }`; `config_override`
  // replaces the whole file (the failure-path test).
  std::string start(const std::string& extra_rtmp_app, const std::string& config_override = "") {
    const std::string nginx = nginx_binary();
    if (nginx.empty()) return "no nginx binary (Debian: apt-get install nginx libnginx-mod-rtmp; or set LA_NGINX)";
    port_ = free_loopback_port();
    if (port_ <= 0) return "no free loopback port";
    // Debian builds the module as a dynamic one (libnginx-mod-rtmp).
    const std::string module = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
    std::string conf = config_override;
    if (conf.empty()) {
      if (access(module.c_str(), R_OK) == 0) conf += "load_module " + module + ";\n";
      conf += "daemon off;\nmaster_process off;\nworker_processes 1;\n";
      conf += "error_log " + log() + " info;\npid " + (dir_ / "nginx.pid").string() + ";\n";
      conf += "events { worker_connections 64; }\n";
      conf += "rtmp { server { listen 127.0.0.1:" + std::to_string(port_) +
              "; application live { live on; " + extra_rtmp_app + " } } }\n";
    }
    write_bytes((dir_ / "nginx.conf").string(), conf);
    process_.emplace(std::vector<std::string>{nginx, "-p", dir_.string() + "/", "-e", log(), "-c",
                                              (dir_ / "nginx.conf").string()},
                     (dir_ / "nginx.out").string());
    if (std::string why = process_->start(); !why.empty()) return why;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!process_->running())
        return "nginx exited (" + describe_wait_status(process_->status()) + ") before listening on port " +
               std::to_string(port_) + ":\n" + diagnostics();
      if (port_accepts(port_)) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
    return "nginx did not accept on 127.0.0.1:" + std::to_string(port_) + " within 5 s:\n" + diagnostics();
  }

  // Graceful stop (SIGQUIT: open recordings are closed), then SIGKILL after 5 s.
  void stop() {
    if (process_) process_->stop(SIGQUIT);
  }

  // Waits (bounded) until nginx's error log holds `text`.
  bool wait_for_log(const std::string& text, std::chrono::seconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (read_bytes(log()).find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::string diagnostics() const {
    return "--- nginx.out\n" + read_bytes((dir_ / "nginx.out").string()) + "--- error.log\n" + read_bytes(log());
  }
  int port() const { return port_; }
  std::string url(const std::string& stream) const {
    return "rtmp://127.0.0.1:" + std::to_string(port_) + "/live/" + stream;
  }

 private:
  std::string log() const { return (dir_ / "error.log").string(); }
  std::filesystem::path dir_;
  std::optional<ChildProcess> process_;
  int port_ = -1;
};

// The SRT server: a reader whose srtsrc is the listener (it binds its UDP port
// when it starts). Returns "" or why it did not start (the bus's error).
inline std::string start_srt_server(GstElement* p) {
  if (gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE) return "";
  std::string why = "the SRT listener did not start";
  GstBus* bus = gst_element_get_bus(p);
  if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    why += ": " + message_text(m);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return why;
}

inline std::string srt_url(int port, const char* mode) {
  return "srt://127.0.0.1:" + std::to_string(port) + "?mode=" + mode;
}

// What a reader got: decoded video frames and audio, first timestamps.
struct ReadBack {
  int frames = 0, audio_buffers = 0, audio_rate = 0;
  guint64 audio_samples = 0;
  GstClockTime first_video = GST_CLOCK_TIME_NONE, last_video = GST_CLOCK_TIME_NONE, first_audio = GST_CLOCK_TIME_NONE;
  double audio_s() const { return audio_rate ? static_cast<double>(audio_samples) / audio_rate : 0; }
  // First video PTS - first audio PTS (FLV timestamps are whole ms).
  double offset_ms() const {
    return (static_cast<double>(first_video) - static_cast<double>(first_audio)) / GST_MSECOND;
  }
  // One line of figures for the log: "<protocol>: <who>: N video frames ...".
  void print(const char* protocol, const char* who) const {
    std::printf("%s: %s: %d video frames (%.3f s to %.3f s), %d audio buffers (%.3f s at %d Hz), "
                "A/V start offset %.1f ms\n", protocol, who, frames, static_cast<double>(first_video) / GST_SECOND,
                static_cast<double>(last_video) / GST_SECOND, audio_buffers, audio_s(), audio_rate, offset_ms());
  }
};

// What every output must deliver besides its video frames: the audio, at the
// codec's rate and the published duration, starting with the video.
inline void expect_audio_in_sync(const ReadBack& r, int rate, double published_s) {
  EXPECT_GT(r.audio_buffers, 0);
  EXPECT_EQ(r.audio_rate, rate);
  EXPECT_NEAR(r.audio_s(), published_s, 0.1);  // whole codec frames: a little over the audio published
  ASSERT_TRUE(GST_CLOCK_TIME_IS_VALID(r.first_video) && GST_CLOCK_TIME_IS_VALID(r.first_audio));
  EXPECT_LE(std::abs(r.offset_ms()), 40.0);
}

// The containers our outputs write: FLV (RTMP), MPEG-TS (SRT), MP4 (files).
enum class Container { kFlv, kMpegTs, kMp4 };

// `source` (the container's bytes) demuxed, and its H.264 video and MP3 audio decoded into two
// appsinks, v and a. tsdemux's pads are named after the stream's PIDs: the branches pick theirs
// by caps.
inline GstElement* reader(const std::string& source, Container container = Container::kFlv) {
  const char* video = "";
  const char* audio = "";
  switch (container) {
    case Container::kFlv: video = " ! flvdemux name=d d.video"; audio = "d.audio"; break;
    case Container::kMpegTs: video = " ! tsdemux name=d d. ! video/x-h264"; audio = "d. ! audio/mpeg"; break;
    case Container::kMp4: video = " ! qtdemux name=d d.video_0"; audio = "d.audio_0"; break;
  }
  return test::parse(source + video + " ! queue ! h264parse ! openh264dec ! "
                     "appsink name=v sync=false max-buffers=0 wait-on-eos=false " + audio +
                     " ! queue ! mpegaudioparse ! mpg123audiodec ! audioconvert ! "
                     "audio/x-raw,format=S16LE ! appsink name=a sync=false max-buffers=0 wait-on-eos=false");
}

// Everything the appsinks of a reader at EOS hold; sets it to NULL and unrefs it.
inline ReadBack collect(GstElement* p) {
  ReadBack r;
  GstElement* vsink = gst_bin_get_by_name(GST_BIN(p), "v");
  GstElement* asink = gst_bin_get_by_name(GST_BIN(p), "a");
  while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(vsink), 0)) {
    if (!r.frames++) r.first_video = GST_BUFFER_PTS(gst_sample_get_buffer(s));
    r.last_video = GST_BUFFER_PTS(gst_sample_get_buffer(s));
    gst_sample_unref(s);
  }
  while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(asink), 0)) {
    // S16LE (the caps filter): 2 bytes per sample and channel.
    const GstStructure* st = gst_caps_get_structure(gst_sample_get_caps(s), 0);
    int channels = 0;
    if (gst_structure_get_int(st, "rate", &r.audio_rate) && gst_structure_get_int(st, "channels", &channels) &&
        channels > 0)
      r.audio_samples += gst_buffer_get_size(gst_sample_get_buffer(s)) / (2u * channels);
    if (!r.audio_buffers++) r.first_audio = GST_BUFFER_PTS(gst_sample_get_buffer(s));
    gst_sample_unref(s);
  }
  gst_object_unref(vsink);
  gst_object_unref(asink);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  return r;
}

// A client of an RTSP URL over TCP, playing: the video decoded into appsink v, the audio decoded
// and dropped.
inline GstElement* playing_rtsp_client(const std::string& url) {
  GstElement* client = test::parse(
      "rtspsrc location=" + url + " protocols=tcp latency=200 name=src "
      "src. ! application/x-rtp,media=video ! queue ! rtph264depay ! h264parse ! openh264dec ! "
      "appsink name=v sync=false max-buffers=0 wait-on-eos=false "
      "src. ! application/x-rtp,media=audio ! queue ! rtpopusdepay ! opusdec ! fakesink sync=false");
  if (client) gst_element_set_state(client, GST_STATE_PLAYING);
  return client;
}

// Takes up to `n` frames from appsink v, waiting at most `each` for every one; how many came.
inline int pull_video_frames(GstElement* reader, int n, GstClockTime each) {
  GstElement* v = gst_bin_get_by_name(GST_BIN(reader), "v");
  int frames = 0;
  while (frames < n) {
    GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(v), each);
    if (!sample) break;
    gst_sample_unref(sample);
    ++frames;
  }
  gst_object_unref(v);
  return frames;
}

}  // namespace la::test

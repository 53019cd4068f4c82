// la-webrtc-loopback: the avatar over WebRTC, sender and receiver in one
// process. A live audio source through liveavatarbin, H.264 video (openh264enc,
// rtph264pay) and Opus audio (opusenc, rtpopuspay) into a webrtcbin; a second
// webrtcbin receives it, decodes it and plays it (autovideosink, autoaudiosink
// unless --video-sink / --audio-sink say otherwise). The SDP offer/answer and the
// ICE candidates are handed over in-process (webrtc_link.h): no signalling
// server, no STUN/TURN, ICE on 127.0.0.1 only (docs/live-streaming.md).
//
//   la-webrtc-loopback --checkpoint-dir DIR --lora FILE --image FILE [--size W*H]
//                      [--prompt TEXT] [--wav FILE | --seconds S]
//                      [--video-sink "fakesink"] [--audio-sink "fakesink"]
//
// Prints the ICE candidates and "connected" once both ends are connected (ICE
// and DTLS; the media waits for that), and at the end
// "received N video frames and M audio buffers". The source ends (EOS) after S
// seconds of tone, or at the WAV's end (played in real time); without either it
// runs until SIGINT / SIGTERM. Exits 1 on a pipeline error or when the
// negotiation fails.
#include <glib-unix.h>
#include <gst/gst.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tools/common/args.h"
#include "tools/common/avatar_launch.h"
#include "tools/webrtc_loopback/webrtc_link.h"

namespace {

struct Options {
  la::tools::AvatarSettings avatar;
  std::string wav;
  std::string video_sink = "autovideosink", audio_sink = "autoaudiosink";
  double seconds = 0;  // 0: the live tone never ends
};

void usage(FILE* out) {
  std::fputs(
      "usage: la-webrtc-loopback --checkpoint-dir DIR --lora FILE --image FILE [--size W*H] [--prompt TEXT]\n"
      "                          [--wav FILE | --seconds S] [--video-sink SINK] [--audio-sink SINK]\n"
      "  --wav FILE      speech played in real time as the live source (default: a live test tone)\n"
      "  --seconds S     the tone ends (EOS) after S seconds (whole 0.1 s buffers); default: never\n"
      "  --video-sink, --audio-sink   launch-line fragments after the decoders (default autovideosink,\n"
      "                  autoaudiosink; fakesink on a machine without a display or sound)\n",
      out);
}

bool parse_args(int argc, char** argv, Options& o) {
  la::tools::Args args(argc, argv);
  try {
    while (args.next()) {
      const std::string& a = args.flag();
      if (a == "-h" || a == "--help") {
        usage(stdout);
        std::exit(0);
      }
      if (la::tools::take_avatar_flag(args, o.avatar)) continue;
      if (a == "--wav") o.wav = args.value();
      else if (a == "--seconds") o.seconds = args.double_value();
      else if (a == "--video-sink") o.video_sink = args.value();
      else if (a == "--audio-sink") o.audio_sink = args.value();
      else args.unknown();
    }
  } catch (const la::tools::UsageError& e) {
    std::fprintf(stderr, "la-webrtc-loopback: %s\n", e.what());
    return false;
  }
  if (o.seconds < 0) {
    std::fprintf(stderr, "la-webrtc-loopback: --seconds must be >= 0 (0: never ends), got %g\n", o.seconds);
    return false;
  }
  if (o.avatar.checkpoint_dir.empty() || o.avatar.lora.empty() || o.avatar.image.empty()) {
    std::fprintf(stderr, "la-webrtc-loopback: give --checkpoint-dir, --lora and --image\n");
    return false;
  }
  return true;
}

// The sender: the live source split by a tee, as in examples/live-rtmp.sh (the
// audio branch's queue holds up to 5 s: liveavatarbin needs its latency of
// audio ahead before it emits a block), payloaded into webrtcbin.
std::string sender_line(const Options& o) {
  return la::tools::avatar_rtp_branches(la::tools::live_audio_source(o.wav, o.seconds), o.avatar,
                                        " ! queue ! send.", " ! queue ! send.") +
         " webrtcbin name=send bundle-policy=max-bundle";
}

struct App {
  GMainLoop* loop = nullptr;
  la::webrtc::Link* link = nullptr;
  int status = 0;
  bool connected = false;
};

gboolean on_bus(GstBus*, GstMessage* m, gpointer data) {
  auto* app = static_cast<App*>(data);
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError* err = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(m, &err, &debug);
    std::fprintf(stderr, "la-webrtc-loopback: %s: %s\n  %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(m)),
                 err ? err->message : "error", debug ? debug : "");
    g_clear_error(&err);
    g_free(debug);
    app->status = 1;
    g_main_loop_quit(app->loop);
  } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_APPLICATION &&
             gst_structure_has_name(gst_message_get_structure(m), la::webrtc::Link::kEosMessage)) {
    // The sender's streams ended (webrtc_link.h keeps EOS out of webrtcbin):
    // the last packets are still on their way and in the receiver's
    // jitterbuffer (200 ms), so the connection stays up 1 s more.
    std::printf("la-webrtc-loopback: the source ended\n");
    std::fflush(stdout);
    g_timeout_add(1000, [](gpointer loop) {
      g_main_loop_quit(static_cast<GMainLoop*>(loop));
      return G_SOURCE_REMOVE;
    }, app->loop);
  }
  return G_SOURCE_CONTINUE;
}

gboolean on_signal(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop*>(loop));
  return G_SOURCE_REMOVE;
}

// Twice a second: "connected" once both ends are, with the candidates; a
// negotiation or connection that failed ends the run.
gboolean check_link(gpointer data) {
  auto* app = static_cast<App*>(data);
  if (!app->connected && app->link->connected()) {
    app->connected = true;
    for (const std::string& c : app->link->candidates()) std::printf("la-webrtc-loopback: %s\n", c.c_str());
    std::printf("la-webrtc-loopback: connected\n");
    std::fflush(stdout);
  }
  const std::string error = app->link->error();
  if (error.empty()) return G_SOURCE_CONTINUE;
  std::fprintf(stderr, "la-webrtc-loopback: %s\n", error.c_str());
  app->status = 1;
  g_main_loop_quit(app->loop);
  return G_SOURCE_REMOVE;
}

GstElement* launch(const std::string& line) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch_full(line.c_str(), nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &err);
  if (!p || err) {
    std::fprintf(stderr, "la-webrtc-loopback: %s\n  %s\n", err ? err->message : "does not parse", line.c_str());
    g_clear_error(&err);
    if (p) gst_object_unref(p);
    return nullptr;
  }
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_args(argc, argv, o)) {
    usage(stderr);
    return 2;
  }
  gst_init(nullptr, nullptr);
  GstElement* sender = launch(sender_line(o));
  if (!sender) return 1;
  GstElement* send = gst_bin_get_by_name(GST_BIN(sender), "send");
  // The receiver: a webrtcbin alone in a pipeline; its decoding branches are
  // added as its streams come.
  GstElement* receiver = gst_pipeline_new("receiver");
  GstElement* recv = gst_element_factory_make("webrtcbin", "recv");
  if (!send || !recv) {
    std::fprintf(stderr, "la-webrtc-loopback: no webrtcbin (Debian: gstreamer1.0-plugins-bad, gstreamer1.0-nice)\n");
    return 1;
  }
  g_object_set(recv, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  gst_bin_add(GST_BIN(receiver), GST_ELEMENT(gst_object_ref(recv)));

  App app;
  app.loop = g_main_loop_new(nullptr, FALSE);
  la::webrtc::Link link(send, recv);
  app.link = &link;
  la::webrtc::Branches branches;
  branches.video = "queue ! rtph264depay ! h264parse ! openh264dec name=decoded ! videoconvert ! " + o.video_sink;
  branches.audio = "queue ! rtpopusdepay ! opusdec name=decoded ! audioconvert ! audioresample ! " + o.audio_sink;
  branches.connect(recv, receiver);
  GstBus* sender_bus = gst_element_get_bus(sender);
  GstBus* receiver_bus = gst_element_get_bus(receiver);
  gst_bus_add_watch(sender_bus, on_bus, &app);
  gst_bus_add_watch(receiver_bus, [](GstBus* bus, GstMessage* m, gpointer data) {
    return GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR ? on_bus(bus, m, data) : G_SOURCE_CONTINUE;
  }, &app);
  g_unix_signal_add(SIGINT, on_signal, app.loop);
  g_unix_signal_add(SIGTERM, on_signal, app.loop);
  g_timeout_add(500, check_link, &app);

  // The receiver first: it must be ready for the sender's offer.
  if (gst_element_set_state(receiver, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE ||
      gst_element_set_state(sender, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // The error an element posted (a missing checkpoint file or image, webrtcbin's own) says why;
    // without one, the likely cause is webrtcbin's ICE agent.
    bool said = false;
    for (GstBus* bus : {receiver_bus, sender_bus})
      while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
        on_bus(bus, m, &app);
        gst_message_unref(m);
        said = true;
      }
    if (!said)
      std::fprintf(stderr, "la-webrtc-loopback: the pipelines did not start (is gstreamer1.0-nice installed?)\n");
    app.status = 1;
  } else {
    g_main_loop_run(app.loop);
  }

  gst_element_set_state(sender, GST_STATE_NULL);
  gst_element_set_state(receiver, GST_STATE_NULL);
  {
    std::lock_guard<std::mutex> lock(branches.mutex);
    for (const std::string& e : branches.errors) std::fprintf(stderr, "la-webrtc-loopback: %s\n", e.c_str());
    if (!branches.errors.empty()) app.status = 1;
    std::printf("la-webrtc-loopback: received %d video frames and %d audio buffers\n", branches.decoded_video,
                branches.decoded_audio);
  }
  gst_bus_remove_watch(sender_bus);
  gst_bus_remove_watch(receiver_bus);
  gst_object_unref(sender_bus);
  gst_object_unref(receiver_bus);
  gst_object_unref(send);
  gst_object_unref(recv);
  gst_object_unref(sender);
  gst_object_unref(receiver);
  g_main_loop_unref(app.loop);
  return app.status;
}

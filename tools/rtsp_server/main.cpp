// la-rtsp-server: serves the avatar over RTSP (gst-rtsp-server). A live audio
// source through liveavatarbin, H.264 video (openh264enc, rtph264pay) and Opus
// audio (opusenc, rtpopuspay), as one shared media at rtsp://ADDRESS:PORT/MOUNT;
// read it back with rtspsrc, gst-play-1.0, ffplay or VLC (docs/live-streaming.md).
//
//   la-rtsp-server --checkpoint-dir DIR --lora FILE --image FILE [--size W*H]
//                  [--prompt TEXT] [--seconds S] [--port 8554] [--address 127.0.0.1]
//                  [--mount /avatar]
//   la-rtsp-server --launch "( ... name=pay0 ... name=pay1 )" [--port ...]
//
// Loads the avatar's models before it listens, then prints "la-rtsp-server:
// serving rtsp://ADDRESS:PORT/MOUNT" (--port 0: a port the system picks, the
// one printed); exits with status 1 and the reason on stderr when a model file
// or the image is bad, it cannot listen (the port taken) or the launch line
// does not parse. SIGINT / SIGTERM stop it.
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/common/args.h"
#include "tools/common/avatar_launch.h"

namespace {

struct Options {
  std::string address = "127.0.0.1", mount = "/avatar", launch;
  la::tools::AvatarSettings avatar;
  int port = 8554;
  double seconds = 0;  // 0: the live source never ends
};

void usage(FILE* out) {
  std::fputs(
      "usage: la-rtsp-server --checkpoint-dir DIR --lora FILE --image FILE [--size W*H] [--prompt TEXT]\n"
      "                      [--seconds S] [--port N] [--address ADDR] [--mount /PATH]\n"
      "       la-rtsp-server --launch \"( ... name=pay0 ... )\" [--port N] [--address ADDR] [--mount /PATH]\n"
      "  --seconds S   the live test tone ends (EOS) after S seconds (whole 0.1 s buffers); default: never\n"
      "  --port N      TCP port (default 8554; 0: the system picks one, printed)\n",
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
      if (a == "--port") o.port = args.int_value();
      else if (a == "--address") o.address = args.value();
      else if (a == "--mount") o.mount = args.value();
      else if (a == "--launch") o.launch = args.value();
      else if (a == "--seconds") o.seconds = args.double_value();
      else args.unknown();
    }
  } catch (const la::tools::UsageError& e) {
    std::fprintf(stderr, "la-rtsp-server: %s\n", e.what());
    return false;
  }
  if (o.seconds < 0) {
    std::fprintf(stderr, "la-rtsp-server: --seconds must be >= 0 (0: never ends), got %g\n", o.seconds);
    return false;
  }
  if (o.port < 0 || o.port > 65535) {
    std::fprintf(stderr, "la-rtsp-server: --port must be 0..65535, got %d\n", o.port);
    return false;
  }
  if (o.mount.empty() || o.mount[0] != '/') o.mount = "/" + o.mount;
  if (o.launch.empty() && (o.avatar.checkpoint_dir.empty() || o.avatar.lora.empty() || o.avatar.image.empty())) {
    std::fprintf(stderr, "la-rtsp-server: give --checkpoint-dir, --lora and --image (or --launch)\n");
    return false;
  }
  return true;
}

// The media: the live tone split by a tee, as in examples/live-rtmp.sh. The
// audio branch's queue holds up to 5 s: liveavatarbin needs its latency (1-2 s)
// of audio ahead before it emits a block. 1600-sample buffers at 16 kHz (0.1 s):
// --seconds sets num-buffers, so the media ends with EOS (rtspsrc: RTCP BYE, EOS).
std::string launch_line(const Options& o) {
  if (!o.launch.empty()) return o.launch;
  return "( " +
         la::tools::avatar_rtp_branches(la::tools::live_audio_source("", o.seconds), o.avatar, " name=pay0",
                                        " name=pay1") +
         " )";
}

// The media's launch line parsed (the part between its parentheses), and with
// `to_ready` taken to READY; nullptr after printing why not (the parser's
// message, or the error an element posted: a missing file, a bad size).
GstElement* preflight(const std::string& launch, bool to_ready) {
  std::string body = launch;
  const auto open = body.find('('), close = body.rfind(')');
  if (open != std::string::npos && close != std::string::npos && close > open)
    body = body.substr(open + 1, close - open - 1);
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch_full(body.c_str(), nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &err);
  if (!pipeline || err) {
    std::fprintf(stderr, "la-rtsp-server: the media's launch line does not parse: %s\n  %s\n",
                 err ? err->message : "?", launch.c_str());
    g_clear_error(&err);
    if (pipeline) gst_object_unref(pipeline);
    return nullptr;
  }
  if (!to_ready) return pipeline;
  std::printf("la-rtsp-server: loading the models\n");
  std::fflush(stdout);
  if (gst_element_set_state(pipeline, GST_STATE_READY) != GST_STATE_CHANGE_FAILURE) return pipeline;
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  gst_object_unref(bus);
  gchar* debug = nullptr;
  if (msg) gst_message_parse_error(msg, &err, &debug);
  std::fprintf(stderr, "la-rtsp-server: the media cannot start: %s%s%s\n",
               err ? err->message : "a state change failed", debug ? "\n  " : "", debug ? debug : "");
  g_clear_error(&err);
  g_free(debug);
  if (msg) gst_message_unref(msg);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return nullptr;
}

gboolean on_signal(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop*>(loop));
  return G_SOURCE_REMOVE;
}

// Every media the factory made (one while shared, another after a media ended), held so that
// main can stop them before it returns: exit() must not run while the avatar's threads still
// decode (a Ctrl-C with a client connected crashed in exit's destructors).
struct Medias {
  std::mutex lock;
  std::vector<GstRTSPMedia*> all;
};

void on_media_configure(GstRTSPMediaFactory*, GstRTSPMedia* media, gpointer data) {
  auto* medias = static_cast<Medias*>(data);
  std::lock_guard<std::mutex> g(medias->lock);
  medias->all.push_back(GST_RTSP_MEDIA(g_object_ref(media)));
}

GstRTSPFilterResult close_client(GstRTSPServer*, GstRTSPClient*, gpointer) { return GST_RTSP_FILTER_REMOVE; }

// Closes the clients and takes every media's pipeline to NULL (which joins its streaming
// threads, the avatar's included).
void stop_serving(GstRTSPServer* server, Medias& medias) {
  gst_rtsp_server_client_filter(server, close_client, nullptr);
  std::vector<GstRTSPMedia*> all;
  {
    std::lock_guard<std::mutex> g(medias.lock);
    all.swap(medias.all);
  }
  for (GstRTSPMedia* m : all) {
    gst_rtsp_media_unprepare(m);  // no-op for one already unprepared
    g_object_unref(m);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse_args(argc, argv, o)) {
    usage(stderr);
    return 2;
  }
  gst_init(nullptr, nullptr);
  const std::string launch = launch_line(o);

  // The factory parses the launch line only when the first client comes, and a
  // bad checkpoint, LoRA or image would then fail that client alone, after the
  // server had said it serves. So parse it once now; our own avatar line also
  // goes to READY, which loads and checks every model file and the image. That
  // copy stays in READY until the server stops: the process-wide model cache
  // keeps the weights loaded, so the first client does not wait for them (the
  // 14B model loads in minutes), and the media's pipeline shares them. A custom
  // --launch line is only parsed: its sources (a camera, a capture card) may
  // refuse to be opened twice.
  GstElement* loaded = preflight(launch, /*to_ready=*/o.launch.empty());
  if (!loaded) return 1;
  GstRTSPServer* server = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server, o.address.c_str());
  gst_rtsp_server_set_service(server, std::to_string(o.port).c_str());
  GstRTSPMediaFactory* factory = gst_rtsp_media_factory_new();
  gst_rtsp_media_factory_set_launch(factory, launch.c_str());
  // One pipeline for every client: the avatar is generated once.
  gst_rtsp_media_factory_set_shared(factory, TRUE);
  Medias medias;
  g_signal_connect(factory, "media-configure", G_CALLBACK(on_media_configure), &medias);
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
  gst_rtsp_mount_points_add_factory(mounts, o.mount.c_str(), factory);  // takes the factory
  g_object_unref(mounts);

  // create_source rather than attach: it says why it cannot listen.
  GError* err = nullptr;
  GSource* source = gst_rtsp_server_create_source(server, nullptr, &err);
  if (!source) {
    std::fprintf(stderr, "la-rtsp-server: cannot listen on %s:%d: %s\n", o.address.c_str(), o.port,
                 err ? err->message : "unknown error");
    g_clear_error(&err);
    g_object_unref(server);
    gst_element_set_state(loaded, GST_STATE_NULL);
    gst_object_unref(loaded);
    return 1;
  }
  g_source_attach(source, nullptr);
  GMainLoop* loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGINT, on_signal, loop);
  g_unix_signal_add(SIGTERM, on_signal, loop);
  std::printf("la-rtsp-server: serving rtsp://%s:%d%s\n", o.address.c_str(), gst_rtsp_server_get_bound_port(server),
              o.mount.c_str());
  std::fflush(stdout);
  g_main_loop_run(loop);

  g_source_destroy(source);  // no new clients
  stop_serving(server, medias);
  g_source_unref(source);
  g_main_loop_unref(loop);
  g_object_unref(server);
  gst_element_set_state(loaded, GST_STATE_NULL);
  gst_object_unref(loaded);
  return 0;
}

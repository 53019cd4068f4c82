// la-bench-live-soak: a long live run. A live appsrc sends speech with pauses
// in real time for --minutes: utterances, silence that is sent, stretches in
// which nothing is sent at all (a TTS between sentences: the idle filler keeps
// the video going) and timestamp jumps (lost audio: filled with silence).
// liveavatarbin makes the video; video (H.264) and the original audio (MP3)
// are muxed into MPEG-TS as for a broadcast (docs/live-streaming.md) and
// written to a file. It prints the process's RSS every minute and, reading
// the file back as a receiver would, the video's frame count and spacing and
// the A/V offset at the start and at the end.
//
//   GST_PLUGIN_PATH=build/elements build/tools/la-bench-live-soak --checkpoint-dir DIR
//       --lora FILE --image face.png [--size 64*64] [--minutes 10] [--out soak.ts] [--analyze]
//
// A/V offset: at the start, the first video timestamp minus the first audio
// timestamp; at the end, the end of the video minus the end of the audio
// (the first audio timestamp + the audio sent, and the MP3 track's end, which
// is up to a frame later), less the padding of the last block (the video ends
// on the 0.48 s block grid that starts at the first audio sample). Equal
// offsets mean the video's 25 fps timeline and the audio's clock did not
// drift apart. Exit status 1 when a frame is missing or out of place, the
// offsets differ by more than 40 ms (60 ms for the MP3 track's end), or the
// RSS of the last minute is more than 10% above the second minute's.
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tools/bench/voiced_signal.h"
#include "tools/common/args.h"
#include "tools/common/avatar_launch.h"

namespace {

struct Options {
  la::tools::AvatarSettings avatar{"", "", "", "64*64", ""};  // no prompt: the element's default
  std::string out = "/tmp/la-live-soak.ts";
  double minutes = 10;
  bool analyze_only = false;  // read --out back without a live run
};

void usage(FILE* f) {
  std::fprintf(f,
               "usage: la-bench-live-soak --checkpoint-dir DIR --lora FILE --image PICTURE [--size W*H] "
               "[--minutes M] [--out FILE.ts] [--analyze]\n"
               "--analyze reads FILE.ts of an earlier run of --minutes back, without a live run.\n"
               "A long live run: RSS and A/V offset (GST_PLUGIN_PATH must reach the liveavatar plugin).\n");
}

Options parse(int argc, char** argv) {
  Options o;
  la::tools::Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (la::tools::take_avatar_flag(args, o.avatar)) continue;
    if (a == "--minutes") o.minutes = args.double_value();
    else if (a == "--out") o.out = args.value();
    else if (a == "--analyze") o.analyze_only = true;
    else args.unknown();
  }
  if (!o.analyze_only && (o.avatar.checkpoint_dir.empty() || o.avatar.image.empty()))
    throw la::tools::UsageError("--checkpoint-dir and --image are required (except with --analyze)");
  if (!(o.minutes >= 0.5 && o.minutes <= 24 * 60)) throw la::tools::UsageError("--minutes must be 0.5..1440");
  return o;
}

constexpr int kRate = 16000, kChunk = 1600;  // 100 ms buffers
constexpr GstClockTime kChunkTime = GST_SECOND * kChunk / kRate;
constexpr GstClockTime kFrame = GST_SECOND / 25, kBlock = 12 * kFrame;

// What the source does in each 100 ms of a 20 s cycle.
enum class Chunk { kSpeech, kSilence, kNothing, kJump };
Chunk chunk_at(GstClockTime since_start) {
  const double t = std::fmod(static_cast<double>(since_start) / GST_SECOND, 20.0);
  if (t < 3.0) return Chunk::kSpeech;        // an utterance
  if (t < 4.0) return Chunk::kSilence;       // a pause that is sent (a microphone)
  if (t < 6.5) return Chunk::kNothing;       // nothing at all (a TTS between sentences)
  if (t < 10.0) return Chunk::kSpeech;
  if (t < 10.3) return Chunk::kJump;         // lost: the next buffer's timestamp jumps
  if (t < 15.0) return Chunk::kSpeech;
  return Chunk::kNothing;
}


int64_t rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return -1;
}

GstElement* launch(const std::string& line) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(line.c_str(), &err);
  if (!p || err) throw std::runtime_error(err ? err->message : "cannot build the pipeline");
  return p;
}

// Waits for EOS or an error on `p`'s bus; returns the error ("" at EOS).
// `skipped`: the generator's skipped-blocks, last reported.
std::string wait_for_end(GstElement* p, GstClockTime timeout, std::atomic<guint64>* skipped = nullptr) {
  GstBus* bus = gst_element_get_bus(p);
  std::string error;
  for (;;) {
    GstMessage* m = gst_bus_timed_pop_filtered(
        bus, timeout,
        static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_LATENCY | GST_MESSAGE_ELEMENT));
    if (!m) {
      error = "timeout";
      break;
    }
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_LATENCY || GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT) {
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_LATENCY) gst_bin_recalculate_latency(GST_BIN(p));
      const GstStructure* st = gst_message_get_structure(m);
      guint64 n = 0;
      if (skipped && st && gst_structure_has_name(st, "liveavatar-progress") &&
          std::string(GST_OBJECT_NAME(GST_MESSAGE_SRC(m))) == "gen" &&
          gst_structure_get_uint64(st, "skipped-blocks", &n))
        *skipped = n;
      gst_message_unref(m);
      continue;
    }
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError* e = nullptr;
      gst_message_parse_error(m, &e, nullptr);
      error = e ? e->message : "error";
      g_clear_error(&e);
    }
    gst_message_unref(m);
    break;
  }
  gst_object_unref(bus);
  return error;
}

struct Track {
  std::vector<GstClockTime> pts;
  GstClockTime end = 0;  // the largest PTS + duration
};

// The timestamps of every buffer in an appsink, after EOS; a buffer without
// a duration lasts `fallback` (h264parse's frames carry none).
Track drain(GstElement* p, const char* name, GstClockTime fallback) {
  Track t;
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p), name);
  while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 0)) {
    GstBuffer* b = gst_sample_get_buffer(s);
    t.pts.push_back(GST_BUFFER_PTS(b));
    if (GST_BUFFER_PTS_IS_VALID(b))
      t.end = std::max(t.end, GST_BUFFER_PTS(b) + (GST_BUFFER_DURATION_IS_VALID(b) ? GST_BUFFER_DURATION(b) : fallback));
    gst_sample_unref(s);
  }
  gst_object_unref(sink);
  return t;
}

// The live run: --minutes of audio through liveavatarbin into --out, with
// the RSS once a minute in `rss`. False (and a message) when it fails.
bool run_live(const Options& o, std::vector<int64_t>* rss) {
  GstElement* p = nullptr;
  try {
    p = launch(
        "appsrc name=src is-live=true format=time do-timestamp=false caps=audio/x-raw,format=F32LE,rate=16000,"
        "channels=1,layout=interleaved ! tee name=t "
        "t. ! queue ! " + la::tools::liveavatarbin_element(o.avatar) +
        // Both branches' queues before the muxer hold up to 5 s: a live muxer
        // holds what comes early for as long as the pipeline's latency while
        // it waits for the other branch (no audio at all while the source is
        // idle); a default queue (1 s) would fill and stall the video.
        " ! videoconvert ! openh264enc ! h264parse ! queue max-size-time=5000000000 max-size-buffers=0 "
        "max-size-bytes=0 ! mux. "
        "t. ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0 ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=44100 ! lamemp3enc ! mpegaudioparse ! queue ! mux. "
        // sync=true as a network sink (rtmp2sink, srtsink): the pipeline's
        // latency reaches the muxer, which then goes on without audio while the
        // source sends nothing (a muxer that is not live waits for it).
        "mpegtsmux name=mux ! filesink sync=true location=" + o.out);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "la-bench-live-soak: %s\n", e.what());
    return false;
  }
  GstElement* src = gst_bin_get_by_name(GST_BIN(p), "src");
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstClock* clock = gst_pipeline_get_clock(GST_PIPELINE(p));
  const auto running = [&] {
    const GstClockTime base = gst_element_get_base_time(p);
    const GstClockTime now = gst_clock_get_time(clock);
    return now > base ? now - base : 0;
  };
  for (int i = 0; i < 5000 && gst_element_get_base_time(p) == 0; ++i) g_usleep(1000);

  const GstClockTime t0 = running() + 100 * GST_MSECOND;
  const GstClockTime end = t0 + static_cast<GstClockTime>(o.minutes * 60 * GST_SECOND);
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    bool discont = false;
    int64_t speech = 0;
    for (GstClockTime pts = t0; pts < end && !stop; pts += kChunkTime) {
      while (running() < pts + kChunkTime && !stop) g_usleep(2000);
      // The last 2 s are always speech, so the audio ends where the run ends
      // and the end offset compares the two at the same time.
      const Chunk c = pts + 2 * GST_SECOND >= end ? Chunk::kSpeech : chunk_at(pts - t0);
      if (c == Chunk::kNothing) continue;  // not sent: the next buffer comes later, with its own time
      if (c == Chunk::kJump) {
        discont = true;  // lost: the next buffer is marked DISCONT
        continue;
      }
      GstBuffer* b = gst_buffer_new_allocate(nullptr, kChunk * sizeof(float), nullptr);
      GstMapInfo m;
      gst_buffer_map(b, &m, GST_MAP_WRITE);
      auto* x = reinterpret_cast<float*>(m.data);
      for (int i = 0; i < kChunk; ++i) x[i] = c == Chunk::kSpeech ? la::tools::voiced_sample(speech++) : 0.0f;
      gst_buffer_unmap(b, &m);
      GST_BUFFER_PTS(b) = pts;
      GST_BUFFER_DURATION(b) = kChunkTime;
      if (discont) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DISCONT);
      discont = false;
      if (gst_app_src_push_buffer(GST_APP_SRC(src), b) != GST_FLOW_OK) stop = true;
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src));
  });

  // RSS once a minute (the last minute's whatever is left), while it runs.
  std::printf("la-bench-live-soak: %.1f min of live audio at size %s into %s\n", o.minutes, o.avatar.size.c_str(),
              o.out.c_str());
  std::string error;
  std::atomic<guint64> skipped{0};
  std::thread watcher(
      [&] { error = wait_for_end(p, static_cast<GstClockTime>((o.minutes * 60 + 120) * GST_SECOND), &skipped); });
  for (int minute = 1; running() < end + 2 * GST_SECOND; ++minute) {
    while (running() < t0 + static_cast<GstClockTime>(minute) * 60 * GST_SECOND && running() < end + 2 * GST_SECOND)
      g_usleep(200000);
    rss->push_back(rss_kib());
    std::printf("  minute %d: RSS %.1f MiB\n", minute, static_cast<double>(rss->back()) / 1024);
    std::fflush(stdout);
  }
  watcher.join();
  stop = true;
  feeder.join();
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(clock);
  gst_object_unref(src);
  gst_object_unref(p);
  if (!error.empty()) {
    std::fprintf(stderr, "la-bench-live-soak: the live pipeline failed: %s\n", error.c_str());
    return false;
  }
  std::printf("blocks skipped as late (skip-late): %llu\n", static_cast<unsigned long long>(skipped.load()));
  return true;
}

int run(const Options& o) {
  gst_init(nullptr, nullptr);
  std::vector<int64_t> rss;
  if (!o.analyze_only && !run_live(o, &rss)) return 1;

  // The receiver: the file's timestamps, parsed (not decoded).
  GstElement* r = launch("filesrc location=" + o.out +
                         " ! tsdemux name=d d. ! queue ! h264parse ! appsink name=v sync=false wait-on-eos=false "
                         "d. ! queue ! mpegaudioparse ! appsink name=a sync=false wait-on-eos=false");
  gst_element_set_state(r, GST_STATE_PLAYING);
  const std::string error = wait_for_end(r, 300 * GST_SECOND);
  const Track video = drain(r, "v", kFrame), audio = drain(r, "a", 0);
  gst_element_set_state(r, GST_STATE_NULL);
  gst_object_unref(r);
  if (!error.empty() || video.pts.empty() || audio.pts.empty()) {
    std::fprintf(stderr, "la-bench-live-soak: cannot read %s back: %s\n", o.out.c_str(),
                 error.empty() ? "no video or no audio" : error.c_str());
    return 1;
  }

  bool ok = true;
  size_t misplaced = 0;
  for (size_t i = 1; i < video.pts.size(); ++i) misplaced += video.pts[i] != video.pts[0] + i * kFrame;
  const double seconds = static_cast<double>(video.end - video.pts[0]) / GST_SECOND;
  std::printf("video: %zu frames over %.2f s (%.3f fps), %zu not 40 ms after the one before\n", video.pts.size(),
              seconds, static_cast<double>(video.pts.size()) / seconds, misplaced);
  ok &= misplaced == 0;
  const double start_ms = static_cast<double>(GST_CLOCK_DIFF(audio.pts[0], video.pts[0])) / GST_MSECOND;
  // The video ends on the block grid from the first audio sample: past the
  // audio sent by the last block's padding. (The MP3 track itself ends up to
  // a frame, 26 ms, after the audio sent: whole MP3 frames.)
  const auto sent = static_cast<GstClockTime>(o.minutes * 60 * GST_SECOND);
  const GstClockTime padding = (sent + kBlock - 1) / kBlock * kBlock - sent;
  const double end_ms = static_cast<double>(GST_CLOCK_DIFF(audio.pts[0] + sent + padding, video.end)) / GST_MSECOND;
  const double file_end_ms = static_cast<double>(GST_CLOCK_DIFF(audio.end + padding, video.end)) / GST_MSECOND;
  std::printf("audio: %.3f s in the file for %.3f s sent (whole MP3 frames)\n",
              static_cast<double>(audio.end - audio.pts[0]) / GST_SECOND, static_cast<double>(sent) / GST_SECOND);
  std::printf("A/V offset (video - audio): %.1f ms at the start, %.1f ms at the end of the audio sent, %.1f ms at the "
              "end of the file's MP3 track (after %.1f min)\n",
              start_ms, end_ms, file_end_ms, o.minutes);
  ok &= std::fabs(end_ms - start_ms) <= 40 && std::fabs(file_end_ms - start_ms) <= 60;
  if (rss.size() >= 3) {
    const double growth = static_cast<double>(rss.back()) / static_cast<double>(rss[1]) - 1;
    std::printf("RSS: %.1f MiB at minute 2, %.1f MiB at the end (%+.1f%%), max %.1f MiB\n",
                static_cast<double>(rss[1]) / 1024, static_cast<double>(rss.back()) / 1024, 100 * growth,
                static_cast<double>(*std::max_element(rss.begin(), rss.end())) / 1024);
    ok &= growth <= 0.10;
  }
  std::printf("%s\n", ok ? "la-bench-live-soak: ok" : "la-bench-live-soak: FAILED");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return la::tools::run_tool("la-bench-live-soak", argc, argv, usage, [&] { return run(parse(argc, argv)); });
}

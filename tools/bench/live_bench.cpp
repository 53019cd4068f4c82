// la-bench-live: speech onset in a live pipeline. A live appsrc sends silence
// in real time, then utterances (1 s of a voiced signal) after pauses, each
// starting at another offset within the 0.48 s block grid; liveavatarbin turns
// it into video. For each utterance it prints the wall time from the
// utterance's first sample (its timestamp, in the pipeline's running time) to
// the first video frame showing it (the first frame with PTS >= that
// timestamp) leaving the bin, and the pipeline's latency (what a syncing sink
// adds on top to present every frame on time).
//
//   GST_PLUGIN_PATH=build/elements build/tools/la-bench-live --checkpoint-dir DIR
//       --lora FILE --image face.png [--size 64*64] [--utterances 6]
//
// What bounds it: an utterance's first frame is in the block that holds its
// first sample, which laaudiofeat emits once the block's end plus the
// lookahead (0.16 s) has arrived, so the onset is the rest of that block
// (0..0.48 s, depending on where in the block the speech starts) + the
// lookahead + the generator's and the decoder's time for one block.
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
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
  int utterances = 6;
};

void usage(FILE* f) {
  std::fprintf(f,
               "usage: la-bench-live --checkpoint-dir DIR --lora FILE --image PICTURE [--size W*H] "
               "[--utterances N]\n"
               "Speech onset of a live pipeline (GST_PLUGIN_PATH must reach the liveavatar plugin).\n");
}

Options parse(int argc, char** argv) {
  Options o;
  la::tools::Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (la::tools::take_avatar_flag(args, o.avatar)) continue;
    if (a == "--utterances") o.utterances = args.int_value();
    else args.unknown();
  }
  if (o.avatar.checkpoint_dir.empty() || o.avatar.image.empty()) throw la::tools::UsageError("--checkpoint-dir and --image are required");
  if (o.utterances < 1 || o.utterances > 100) throw la::tools::UsageError("--utterances must be 1..100");
  return o;
}

constexpr int kRate = 16000, kChunk = 1600;  // 100 ms buffers, as a sound card or a TTS would send


// The first ERROR `pipeline` posted that nobody read, as "element: message"; empty if none.
std::string pending_error(GstElement* pipeline) {
  GstBus* bus = gst_element_get_bus(pipeline);
  std::string text;
  if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError* err = nullptr;
    gst_message_parse_error(m, &err, nullptr);
    text = std::string(GST_MESSAGE_SRC_NAME(m)) + ": " + (err ? err->message : "error");
    g_clear_error(&err);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return text;
}

int run(const Options& o) {
  gst_init(nullptr, nullptr);
  const std::string line =
      "appsrc name=src is-live=true format=time do-timestamp=false caps=audio/x-raw,format=F32LE,rate=16000,"
      "channels=1,layout=interleaved ! " + la::tools::liveavatarbin_element(o.avatar) +
      " ! appsink name=out sync=false max-buffers=0 wait-on-eos=false";
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(line.c_str(), &err);
  if (!p || err) {
    std::fprintf(stderr, "la-bench-live: %s\n", err ? err->message : "cannot build the pipeline");
    return 1;
  }
  GstElement* src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstElement* out = gst_bin_get_by_name(GST_BIN(p), "out");
  if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    // Loading failed (a missing image, a bad size...): say why, not "no frame" later.
    const std::string error = pending_error(p);
    std::fprintf(stderr, "la-bench-live: the pipeline did not start: %s\n",
                 error.empty() ? "(no error posted)" : error.c_str());
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(src);
    gst_object_unref(out);
    gst_object_unref(p);
    return 1;
  }
  GstClock* clock = gst_pipeline_get_clock(GST_PIPELINE(p));
  const auto running = [&] {
    const GstClockTime base = gst_element_get_base_time(p);
    const GstClockTime now = gst_clock_get_time(clock);
    return now > base ? now - base : 0;
  };
  // A live pipeline gets its base time at once (the sink prerolls on the first
  // block later): running time is valid from then on.
  for (int i = 0; i < 5000 && gst_element_get_base_time(p) == 0; ++i) g_usleep(1000);

  // The utterances' start times: 1.5 s apart pauses, each shifted by another
  // 1/utterances of a block so the onsets cover the block grid.
  std::vector<GstClockTime> starts;
  const GstClockTime t0 = running() + 100 * GST_MSECOND;
  GstClockTime at = t0 + GST_SECOND;
  for (int u = 0; u < o.utterances; ++u) {
    const GstClockTime shift = 480 * GST_MSECOND * static_cast<GstClockTime>(u) / static_cast<GstClockTime>(o.utterances);
    starts.push_back(at + shift);
    at += shift + 2500 * GST_MSECOND;  // 1 s of speech, then 1.5 s of silence
  }
  const GstClockTime end = at;

  // The feeder: silence and speech in 100 ms buffers, each sent when its last
  // sample has "been captured" (in real time by the pipeline's clock).
  std::atomic<bool> failed{false};
  std::thread feeder([&] {
    for (GstClockTime pts = t0; pts < end && !failed; pts += GST_SECOND * kChunk / kRate) {
      while (running() < pts + GST_SECOND * kChunk / kRate) g_usleep(2000);
      GstBuffer* b = gst_buffer_new_allocate(nullptr, kChunk * sizeof(float), nullptr);
      GstMapInfo m;
      gst_buffer_map(b, &m, GST_MAP_WRITE);
      auto* x = reinterpret_cast<float*>(m.data);
      for (int i = 0; i < kChunk; ++i) {
        const GstClockTime t = pts + GST_SECOND * static_cast<GstClockTime>(i) / kRate;
        x[i] = 0.0f;
        for (const GstClockTime s : starts)
          if (t >= s && t < s + GST_SECOND)
            x[i] = la::tools::voiced_sample(static_cast<int64_t>((t - s) * kRate / GST_SECOND));
      }
      gst_buffer_unmap(b, &m);
      GST_BUFFER_PTS(b) = pts;
      GST_BUFFER_DURATION(b) = GST_SECOND * kChunk / kRate;
      if (gst_app_src_push_buffer(GST_APP_SRC(src), b) != GST_FLOW_OK) failed = true;
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src));
  });

  std::vector<double> onset_ms(starts.size(), -1);
  size_t next = 0;
  while (next < starts.size()) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 5 * GST_SECOND);
    if (!s) break;  // EOS, or nothing for 5 s
    const GstClockTime pts = GST_BUFFER_PTS(gst_sample_get_buffer(s));
    const GstClockTime now = running();
    gst_sample_unref(s);
    while (next < starts.size() && pts >= starts[next]) {
      onset_ms[next] = static_cast<double>(now - starts[next]) / GST_MSECOND;
      ++next;
    }
  }
  // What the bin and its source add (asked of the bin's src pad: a sink with
  // sync=false answers for itself, not for upstream).
  GstQuery* q = gst_query_new_latency();
  GstClockTime latency = GST_CLOCK_TIME_NONE;
  GstPad* sinkpad = gst_element_get_static_pad(out, "sink");
  if (gst_pad_peer_query(sinkpad, q)) gst_query_parse_latency(q, nullptr, &latency, nullptr);
  gst_object_unref(sinkpad);
  gst_query_unref(q);
  failed = true;
  feeder.join();
  // An error the pipeline posted while it ran: said, not only "no frame".
  const std::string pipeline_error = pending_error(p);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(clock);
  gst_object_unref(src);
  gst_object_unref(out);
  gst_object_unref(p);

  std::printf("la-bench-live: size %s, %d utterances, onset = first frame showing the utterance out of the bin\n",
              o.avatar.size.c_str(), o.utterances);
  double lo = 1e9, hi = 0, sum = 0;
  int n = 0;
  for (size_t u = 0; u < starts.size(); ++u) {
    const double into_block = std::fmod(static_cast<double>(starts[u] - t0) / GST_MSECOND, 480.0);
    if (onset_ms[u] < 0) {
      std::printf("  utterance %zu (starts %.0f ms into its block): no frame\n", u, into_block);
      continue;
    }
    std::printf("  utterance %zu (starts %.0f ms into its block): onset %.0f ms\n", u, into_block, onset_ms[u]);
    lo = std::min(lo, onset_ms[u]), hi = std::max(hi, onset_ms[u]), sum += onset_ms[u], ++n;
  }
  if (!pipeline_error.empty()) std::fprintf(stderr, "la-bench-live: the pipeline failed: %s\n", pipeline_error.c_str());
  if (n == 0) {
    std::fprintf(stderr, "la-bench-live: no utterance reached the output\n");
    return 1;
  }
  std::printf("onset: min %.0f ms, mean %.0f ms, max %.0f ms; pipeline latency (a syncing sink presents every "
              "frame this late) %.0f ms\n",
              lo, sum / n, hi, static_cast<double>(latency) / GST_MSECOND);
  return n == static_cast<int>(starts.size()) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return la::tools::run_tool("la-bench-live", argc, argv, usage, [&] { return run(parse(argc, argv)); });
}

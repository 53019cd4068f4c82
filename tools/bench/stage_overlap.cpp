// la-bench-stages: whether liveavatarbin's stages compute at the same time. A file-like source
// (not live: as fast as the pipeline goes) feeds liveavatarbin into a fakesink; liveavatargen and
// lavaedecode each post a "liveavatar-progress" message per block with the wall time the block
// took them (block-seconds). In steady state the pipeline makes one block per
//   wall = time between the decoder's messages,
// so busy(gen) / wall + busy(dec) / wall is how many of the two stages compute at once on
// average: near 1 when they take turns (one device queue, the legacy default stream, or a CPU
// without cores to spare), up to 2 when they overlap. On a GPU each element has a stream of its
// own (docs/architecture.md, "Streams and events"); this measures what that buys.
//
//   GST_PLUGIN_PATH=build/elements build/tools/la-bench-stages --checkpoint-dir DIR --lora FILE
//       --image face.png [--size 64*64] [--blocks 12] [--cuda-device-id -1]
//
// The first two blocks (loading, the first clip's warm-up) are left out.
#include <gst/gst.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "tools/common/args.h"
#include "tools/common/avatar_launch.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  la::tools::AvatarSettings avatar{"", "", "", "64*64", ""};  // no prompt: the element's default
  int blocks = 12;
  int cuda_device_id = -1;
};

void usage(FILE* to) {
  std::fprintf(to,
               "usage: la-bench-stages --checkpoint-dir DIR --image FILE [--lora FILE] [--size W*H] [--prompt TEXT]\n"
               "                       [--blocks N] [--cuda-device-id K]\n"
               "Prints each stage's busy time per block and how many stages compute at once.\n");
}

Options parse(int argc, char** argv) {
  Options o;
  la::tools::Args args(argc, argv);
  while (args.next()) {
    if (la::tools::take_avatar_flag(args, o.avatar)) continue;
    if (args.flag() == "--blocks") o.blocks = args.int_value();
    else if (args.flag() == "--cuda-device-id") o.cuda_device_id = args.int_value();
    else args.unknown();
  }
  if (o.avatar.checkpoint_dir.empty() || o.avatar.image.empty())
    throw la::tools::UsageError("--checkpoint-dir and --image are required");
  if (o.blocks < 4 || o.blocks > 1000) throw la::tools::UsageError("--blocks must be 4..1000");
  return o;
}

struct Stage {
  std::vector<double> busy_s;     // block-seconds of each block
  std::vector<double> arrived_s;  // when its message arrived, since the start
};

double mean_from(const std::vector<double>& v, size_t first) {
  if (v.size() <= first) return 0;
  double sum = 0;
  for (size_t i = first; i < v.size(); ++i) sum += v[i];
  return sum / static_cast<double>(v.size() - first);
}

int run(const Options& o) {
  gst_init(nullptr, nullptr);
  // 0.48 s of audio a block; 0.1 s buffers.
  const int buffers = o.blocks * 48 / 10 + 1;
  const std::string line = "audiotestsrc num-buffers=" + std::to_string(buffers) +
                           " samplesperbuffer=1600 wave=ticks ! " + la::tools::liveavatarbin_element(o.avatar) +
                           " cuda-device-id=" + std::to_string(o.cuda_device_id) + " ! fakesink sync=false";
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(line.c_str(), &err);
  if (!p || err) {
    std::fprintf(stderr, "la-bench-stages: %s\n", err ? err->message : "cannot build the pipeline");
    g_clear_error(&err);
    return 1;
  }
  const auto start = Clock::now();
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  Stage gen, dec;
  int rc = 0;
  for (bool done = false; !done;) {
    GstMessage* m = gst_bus_timed_pop_filtered(
        bus, 600 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT));
    if (!m) {
      std::fprintf(stderr, "la-bench-stages: no message in 600 s\n");
      rc = 1;
      break;
    }
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
      GError* e = nullptr;
      gst_message_parse_error(m, &e, nullptr);
      std::fprintf(stderr, "la-bench-stages: %s\n", e ? e->message : "error");
      g_clear_error(&e);
      rc = 1;
      done = true;
    } else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS) {
      done = true;
    } else if (gst_structure_has_name(gst_message_get_structure(m), "liveavatar-progress")) {
      const std::string name = GST_OBJECT_NAME(GST_MESSAGE_SRC(m));
      Stage* s = name == "gen" ? &gen : name == "decode" ? &dec : nullptr;
      double seconds = 0;
      if (s && gst_structure_get_double(gst_message_get_structure(m), "block-seconds", &seconds)) {
        s->busy_s.push_back(seconds);
        s->arrived_s.push_back(std::chrono::duration<double>(Clock::now() - start).count());
      }
    }
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  if (rc) return rc;

  constexpr size_t kWarmUp = 2;
  if (dec.arrived_s.size() < kWarmUp + 2 || gen.busy_s.size() <= kWarmUp) {
    std::fprintf(stderr, "la-bench-stages: only %zu decoded blocks\n", dec.arrived_s.size());
    return 1;
  }
  const double wall = (dec.arrived_s.back() - dec.arrived_s[kWarmUp]) /
                      static_cast<double>(dec.arrived_s.size() - 1 - kWarmUp);
  const double g = mean_from(gen.busy_s, kWarmUp), d = mean_from(dec.busy_s, kWarmUp);
  std::printf("liveavatarbin %s, cuda-device-id=%d: %zu blocks (first %zu left out)\n", o.avatar.size.c_str(),
              o.cuda_device_id, dec.busy_s.size(), kWarmUp);
  std::printf("  liveavatargen: %7.1f ms busy a block\n", 1000 * g);
  std::printf("  lavaedecode:   %7.1f ms busy a block\n", 1000 * d);
  std::printf("  pipeline:      %7.1f ms a block (%.2f frames/s)\n", 1000 * wall, 12 / wall);
  std::printf("overlap: %.2f stages computing at once on average (the sum of the busy times over the wall time)\n",
              (g + d) / wall);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return la::tools::run_tool("la-bench-stages", argc, argv, usage, [&] { return run(parse(argc, argv)); });
}

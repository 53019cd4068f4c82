// la-lipsync: how well, and how early or late, the mouth in a video follows
// its speech (docs/miniature.md). Reads the mouth opening of every frame from
// the pixels of the miniature's mouth region, the loudness envelope of the
// speech at 25 fps, and reports their correlation and the lag of the
// cross-correlation peak as the A/V offset in milliseconds.
//
//   la-lipsync --video demo-out/avatar.mp4 --audio demo-out/speech.wav
#include <gst/gst.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "tools/common/args.h"
#include "tools/miniature/gst_media.h"
#include "tools/miniature/talking_face.h"

namespace {

struct Options {
  std::string video, audio, strip;
  int64_t strip_first = 0, strip_count = 12, strip_step = 2;
  int max_lag = 6;
};

void usage(FILE* f) {
  std::fprintf(f,
               "usage: la-lipsync --video FILE --audio FILE [--max-lag FRAMES] [--strip PNG]\n"
               "                  [--strip-first N] [--strip-count N] [--strip-step N]\n"
               "The video's first frame is taken to start with the audio (as in examples/wav-to-mp4.sh);\n"
               "frames must be square and show the miniature's face. --strip writes frames with the\n"
               "envelope (grey) and the measured mouth (red) under them.\n");
}

Options parse(int argc, char** argv) {
  Options o;
  la::tools::Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--video") o.video = args.value();
    else if (a == "--audio") o.audio = args.value();
    else if (a == "--max-lag") o.max_lag = args.int_value();
    else if (a == "--strip") o.strip = args.value();
    else if (a == "--strip-first") o.strip_first = args.int64_value();
    else if (a == "--strip-count") o.strip_count = args.int64_value();
    else if (a == "--strip-step") o.strip_step = args.int64_value();
    else args.unknown();
  }
  if (o.video.empty() || o.audio.empty()) throw la::tools::UsageError("--video and --audio are required");
  if (o.max_lag < 1 || o.max_lag > 25) throw la::tools::UsageError("--max-lag must be 1..25 frames");
  return o;
}

void run(const Options& o) {
  using namespace la::miniature;
  gchar* quoted = g_strescape(o.video.c_str(), nullptr);
  const std::string line = std::string("filesrc location=\"") + quoted +
                           "\" ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=frames sync=false";
  g_free(quoted);
  std::vector<TimedFrame> frames;
  try {
    frames = decode_frames(line);
  } catch (const std::runtime_error& e) {
    // decodebin's streams all unlinked: none is video (GStreamer says only "not-linked").
    if (std::string(e.what()).find("not-linked") == std::string::npos) throw;
    throw std::runtime_error("--video " + o.video +
                             " has no video stream (an audio file?): give the avatar's video, e.g. the MP4 of "
                             "examples/wav-to-mp4.sh");
  }
  if (frames.empty()) throw std::runtime_error(o.video + " has no video frames");
  const std::vector<float> audio = read_audio_16k(o.audio);
  const GstClockTime start = frames.front().pts;
  const int64_t count = std::min<int64_t>(static_cast<int64_t>(audio.size()) / kSamplesPerFrame,
                                          static_cast<int64_t>(frames.size()));
  const std::vector<float> envelope = loudness_envelope(audio.data(), static_cast<int64_t>(audio.size()), count);
  const std::vector<double> mouth = mouth_series(frames, start, count);
  const LipSync s = measure_lip_sync(mouth, envelope, o.max_lag);
  std::printf("frames: %lld (%.2f s)\n", static_cast<long long>(s.frames), s.frames / 25.0);
  std::printf("correlation at lag 0: %.3f\n", s.correlation);
  std::printf("peak correlation: %.3f at %+d frames\n", s.peak_correlation, s.peak_lag_frames);
  std::printf("A/V offset: %+.1f ms (positive: the mouth moves after the sound)\n", s.offset_ms);
  if (!o.strip.empty()) {
    write_strip_png(o.strip, frames, start, envelope, mouth, o.strip_first, o.strip_count, o.strip_step);
    std::printf("wrote %s\n", o.strip.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  return la::tools::run_tool("la-lipsync", argc, argv, usage, [&] {
    run(parse(argc, argv));
    return 0;
  });
}

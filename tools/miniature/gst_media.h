// GStreamer I/O of the lip-sync measurement: RGB frames with their
// timestamps from an appsink, and 16 kHz mono audio from any file. Shared by
// la-lipsync and the lip-sync tests.
#pragma once

#include <ATen/core/Tensor.h>
#include <gst/gst.h>

#include <string>
#include <vector>

#include "tools/miniature/talking_face.h"

namespace la::miniature {

struct TimedFrame {
  GstClockTime pts;
  at::Tensor rgb;  // uint8 [h, w, 3]
};

// Pulls every frame from `appsink` (caps video/x-raw,format=RGB) until EOS
// or until `bus` posts an ERROR (thrown as std::runtime_error with its text).
// The pipeline must already be playing.
std::vector<TimedFrame> pull_frames(GstElement* appsink, GstBus* bus);

// Plays a gst-launch description with an appsink named "frames" to EOS.
std::vector<TimedFrame> decode_frames(const std::string& launch);

// Any audio file GStreamer decodes, as 16 kHz mono float samples.
std::vector<float> read_audio_16k(const std::string& path);

// Frame n of the mouth series is the frame whose timestamp is n * 40 ms after
// `start`; the series runs over `frames` frames (the envelope's), and frames
// missing from the video count as a failure (std::runtime_error).
std::vector<double> mouth_series(const std::vector<TimedFrame>& frames, GstClockTime start, int64_t count);

// Writes uint8 [h, w, 3] as PNG. Throws std::runtime_error.
void write_png(const std::string& path, const at::Tensor& rgb);

// A picture for the docs: `count` frames from `first` every `step`, side by
// side, with the loudness envelope (grey bars) and the measured mouth
// opening (red) plotted under each, written as PNG.
void write_strip_png(const std::string& path, const std::vector<TimedFrame>& frames, GstClockTime start,
                     const std::vector<float>& envelope, const std::vector<double>& mouth, int64_t first,
                     int64_t count, int64_t step);

}  // namespace la::miniature

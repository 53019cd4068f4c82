#include "tools/miniature/gst_media.h"

#include <ATen/ATen.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace la::miniature {
namespace {

struct Unref {
  void operator()(GstElement* e) const {
    gst_element_set_state(e, GST_STATE_NULL);
    gst_object_unref(e);
  }
};
using PipelinePtr = std::unique_ptr<GstElement, Unref>;

PipelinePtr launch(const std::string& description) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(description.c_str(), &err);
  if (err) {
    const std::string msg = err->message;
    g_error_free(err);
    if (p) gst_object_unref(p);
    throw std::runtime_error("cannot build the pipeline: " + msg);
  }
  return PipelinePtr(p);
}

void throw_if_error(GstBus* bus) {
  if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError* err = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(m, &err, &debug);
    const std::string msg = std::string(err->message) + (debug ? std::string(" | ") + debug : "");
    g_error_free(err);
    g_free(debug);
    gst_message_unref(m);
    throw std::runtime_error(msg);
  }
}

// The 25 fps frame a timestamp falls in, counted from `start` (-1 before it).
int64_t frame_index(GstClockTime pts, GstClockTime start) {
  const GstClockTime frame = GST_SECOND / kFps;
  if (!GST_CLOCK_TIME_IS_VALID(pts) || pts + frame / 2 < start) return -1;
  return static_cast<int64_t>((pts - start + frame / 2) / frame);
}

}  // namespace

std::vector<TimedFrame> pull_frames(GstElement* appsink, GstBus* bus) {
  std::vector<TimedFrame> out;
  GstAppSink* sink = GST_APP_SINK(appsink);
  while (true) {
    throw_if_error(bus);
    GstSample* s = gst_app_sink_try_pull_sample(sink, 100 * GST_MSECOND);
    if (!s) {
      if (gst_app_sink_is_eos(sink)) break;
      continue;
    }
    GstVideoInfo info;
    GstBuffer* buf = gst_sample_get_buffer(s);
    if (!gst_video_info_from_caps(&info, gst_sample_get_caps(s)) ||
        GST_VIDEO_INFO_FORMAT(&info) != GST_VIDEO_FORMAT_RGB) {
      gst_sample_unref(s);
      throw std::runtime_error("the frames must be video/x-raw,format=RGB");
    }
    GstVideoFrame frame;
    if (!gst_video_frame_map(&frame, &info, buf, GST_MAP_READ)) {
      gst_sample_unref(s);
      throw std::runtime_error("cannot map a video frame");
    }
    const int64_t h = info.height, w = info.width, stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);
    at::Tensor rgb = at::empty({h, w, 3}, at::kByte);
    for (int64_t y = 0; y < h; ++y)
      std::memcpy(rgb.data_ptr<uint8_t>() + y * w * 3,
                  static_cast<const uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) + y * stride, w * 3);
    gst_video_frame_unmap(&frame);
    out.push_back({GST_BUFFER_PTS(buf), rgb});
    gst_sample_unref(s);
  }
  throw_if_error(bus);
  return out;
}

std::vector<TimedFrame> decode_frames(const std::string& description) {
  PipelinePtr p = launch(description);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p.get()), "frames");
  if (!sink) throw std::runtime_error("the pipeline has no appsink named 'frames'");
  GstBus* bus = gst_element_get_bus(p.get());
  gst_element_set_state(p.get(), GST_STATE_PLAYING);
  std::vector<TimedFrame> frames;
  try {
    frames = pull_frames(sink, bus);
  } catch (...) {
    gst_object_unref(bus);
    gst_object_unref(sink);
    throw;
  }
  gst_object_unref(bus);
  gst_object_unref(sink);
  return frames;
}

std::vector<float> read_audio_16k(const std::string& path) {
  gchar* quoted = g_strescape(path.c_str(), nullptr);
  PipelinePtr p = launch(std::string("filesrc location=\"") + quoted +
                         "\" ! decodebin ! audioconvert ! audioresample ! "
                         "audio/x-raw,format=F32LE,rate=16000,channels=1 ! appsink name=audio sync=false");
  g_free(quoted);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(p.get()), "audio");
  GstBus* bus = gst_element_get_bus(p.get());
  gst_element_set_state(p.get(), GST_STATE_PLAYING);
  std::vector<float> out;
  std::string error;
  try {
    while (true) {
      throw_if_error(bus);
      GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 100 * GST_MSECOND);
      if (!s) {
        if (gst_app_sink_is_eos(GST_APP_SINK(sink))) break;
        continue;
      }
      GstMapInfo map;
      GstBuffer* buf = gst_sample_get_buffer(s);
      if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
        const float* f = reinterpret_cast<const float*>(map.data);
        out.insert(out.end(), f, f + map.size / sizeof(float));
        gst_buffer_unmap(buf, &map);
      }
      gst_sample_unref(s);
    }
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  gst_object_unref(bus);
  gst_object_unref(sink);
  if (!error.empty()) throw std::runtime_error(path + ": " + error);
  return out;
}

std::vector<double> mouth_series(const std::vector<TimedFrame>& frames, GstClockTime start, int64_t count) {
  std::vector<double> out(static_cast<size_t>(count), std::nan(""));
  for (const auto& f : frames) {
    const int64_t n = frame_index(f.pts, start);
    if (n >= 0 && n < count) out[n] = measure_mouth_opening(f.rgb);
  }
  for (int64_t n = 0; n < count; ++n)
    if (std::isnan(out[n]))
      throw std::runtime_error("no video frame at " + std::to_string(n * 40) + " ms (frame " + std::to_string(n) +
                               " of " + std::to_string(count) + ")");
  return out;
}

void write_png(const std::string& path, const at::Tensor& rgb_in) {
  const at::Tensor strip = rgb_in.contiguous();
  gchar* quoted = g_strescape(path.c_str(), nullptr);
  PipelinePtr p = launch("appsrc name=src ! videoconvert ! pngenc ! filesink location=\"" + std::string(quoted) + "\"");
  g_free(quoted);
  GstElement* src = gst_bin_get_by_name(GST_BIN(p.get()), "src");
  GstCaps* caps = gst_caps_new_simple("video/x-raw", "format", G_TYPE_STRING, "RGB", "width", G_TYPE_INT,
                                      static_cast<int>(strip.size(1)), "height", G_TYPE_INT,
                                      static_cast<int>(strip.size(0)), "framerate", GST_TYPE_FRACTION, 1, 1, nullptr);
  g_object_set(src, "caps", caps, "format", GST_FORMAT_TIME, nullptr);
  gst_caps_unref(caps);
  GstVideoInfo info;
  gst_video_info_set_format(&info, GST_VIDEO_FORMAT_RGB, strip.size(1), strip.size(0));
  GstBuffer* buf = gst_buffer_new_allocate(nullptr, info.size, nullptr);
  GstVideoFrame vf;
  gst_video_frame_map(&vf, &info, buf, GST_MAP_WRITE);
  for (int64_t y = 0; y < strip.size(0); ++y)
    std::memcpy(static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&vf, 0)) + y * GST_VIDEO_FRAME_PLANE_STRIDE(&vf, 0),
                strip.data_ptr<uint8_t>() + y * strip.size(1) * 3, strip.size(1) * 3);
  gst_video_frame_unmap(&vf);
  GST_BUFFER_PTS(buf) = 0;
  GST_BUFFER_DURATION(buf) = GST_SECOND;
  GstBus* bus = gst_element_get_bus(p.get());
  gst_element_set_state(p.get(), GST_STATE_PLAYING);
  gst_app_src_push_buffer(GST_APP_SRC(src), buf);
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  GstMessage* m = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND,
                                             static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  const bool ok = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  gst_object_unref(src);
  if (!ok) throw std::runtime_error("cannot write " + path);
}

void write_strip_png(const std::string& path, const std::vector<TimedFrame>& frames, GstClockTime start,
                     const std::vector<float>& envelope, const std::vector<double>& mouth, int64_t first,
                     int64_t count, int64_t step) {
  if (frames.empty()) throw std::runtime_error("no frames for the strip");
  const int64_t size = frames.front().rgb.size(0), plot = size / 2;
  at::Tensor strip = at::full({size + plot, size * count, 3}, 255, at::kByte);
  const double mouth_max = std::max(1.0, *std::max_element(mouth.begin(), mouth.end()));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t n = first + i * step;
    for (const auto& f : frames)
      if (frame_index(f.pts, start) == n) strip.narrow(0, 0, size).narrow(1, i * size, size).copy_(f.rgb);
    // The frame's own step of the series: envelope as a grey bar, mouth as a red one.
    if (n >= static_cast<int64_t>(envelope.size()) || n >= static_cast<int64_t>(mouth.size())) continue;
    const int64_t e = static_cast<int64_t>(std::lround(envelope[n] * (plot - 4)));
    const int64_t m = static_cast<int64_t>(std::lround(mouth[n] / mouth_max * (plot - 4)));
    const int64_t x = i * size;
    if (e > 0) strip.narrow(0, size + plot - e, e).narrow(1, x + size / 8, size * 3 / 8).fill_(160);
    if (m > 0) {
      at::Tensor bar = strip.narrow(0, size + plot - m, m).narrow(1, x + size / 2, size * 3 / 8);
      bar.select(2, 0).fill_(200);
      bar.select(2, 1).fill_(40);
      bar.select(2, 2).fill_(40);
    }
  }
  write_png(path, strip);
}

}  // namespace la::miniature

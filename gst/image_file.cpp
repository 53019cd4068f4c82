#include "gst/image_file.h"

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <ATen/ATen.h>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace la::gst {
namespace {

struct Unref {
  void operator()(GstElement* e) const {
    gst_element_set_state(e, GST_STATE_NULL);
    gst_object_unref(e);
  }
};

// The first error message on the pipeline's bus, or "".
std::string bus_error(GstElement* pipeline) {
  GstBus* bus = gst_element_get_bus(pipeline);
  std::string text;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError* err = nullptr;
    gst_message_parse_error(m, &err, nullptr);
    if (text.empty() && err) text = err->message;
    g_clear_error(&err);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return text;
}

}  // namespace

at::Tensor load_image_rgb(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw std::runtime_error("image '" + path + "' does not exist or is not a file");
  GError* err = nullptr;
  std::unique_ptr<GstElement, Unref> pipeline(gst_parse_launch(
      "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false", &err));
  if (!pipeline) {
    const std::string why = err ? err->message : "unknown";
    g_clear_error(&err);
    throw std::runtime_error("cannot build the image decoder (filesrc ! decodebin ! videoconvert ! appsink): " + why);
  }
  g_clear_error(&err);  // a non-fatal warning
  GstElement* src = gst_bin_get_by_name(GST_BIN(pipeline.get()), "src");
  g_object_set(src, "location", path.c_str(), nullptr);
  gst_object_unref(src);
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline.get()), "sink");
  gst_element_set_state(pipeline.get(), GST_STATE_PAUSED);
  // Wait for the picture, but stop at the first error (an undecodable file
  // posts one at once) instead of waiting out the whole timeout.
  GstSample* sample = nullptr;
  std::string why;
  for (int waited_ms = 0; !sample && why.empty() && waited_ms < 30000; waited_ms += 50) {
    sample = gst_app_sink_try_pull_preroll(GST_APP_SINK(sink), 50 * GST_MSECOND);
    if (!sample) why = bus_error(pipeline.get());
  }
  gst_object_unref(sink);
  if (!sample) {
    throw std::runtime_error("cannot decode image '" + path + "': " + (why.empty() ? "no picture decoded" : why));
  }
  GstVideoInfo info;
  GstVideoFrame frame;
  const bool ok = gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) &&
                  gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ);
  if (!ok) {
    gst_sample_unref(sample);
    throw std::runtime_error("cannot read the decoded picture of '" + path + "'");
  }
  const int64_t h = GST_VIDEO_INFO_HEIGHT(&info), w = GST_VIDEO_INFO_WIDTH(&info);
  at::Tensor rgb = at::empty({h, w, 3}, at::kByte);
  const auto* data = static_cast<const uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0));
  const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0);  // rows are padded to 4 bytes
  for (int64_t y = 0; y < h; ++y) std::memcpy(rgb.data_ptr<uint8_t>() + y * w * 3, data + y * stride, w * 3);
  gst_video_frame_unmap(&frame);
  gst_sample_unref(sample);
  return rgb;
}

}  // namespace la::gst

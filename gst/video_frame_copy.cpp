#include "gst/video_frame_copy.h"

#include <ATen/ATen.h>
#include <stdexcept>
#include <string>
#include <vector>

namespace la::gst {

void copy_packed_frame(const at::Tensor& packed, video::PixelFormat format, GstVideoFrame* frame) {
  const std::string theirs = gst_video_format_to_string(GST_VIDEO_FRAME_FORMAT(frame));
  if (theirs != video::pixel_format_name(format))
    throw std::invalid_argument("frame is " + theirs + ", the pixels are " + video::pixel_format_name(format));
  const int64_t width = GST_VIDEO_FRAME_WIDTH(frame), height = GST_VIDEO_FRAME_HEIGHT(frame);
  const std::vector<at::Tensor> planes = video::packed_planes(packed, format, width, height);
  if (planes.size() != GST_VIDEO_FRAME_N_PLANES(frame))
    throw std::invalid_argument("frame has " + std::to_string(GST_VIDEO_FRAME_N_PLANES(frame)) + " planes, expected " +
                                std::to_string(planes.size()));
  const auto options = at::TensorOptions().dtype(at::kByte).device(packed.device());
  for (size_t p = 0; p < planes.size(); ++p) {
    const int64_t stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, p);
    if (stride < planes[p].size(1))
      throw std::invalid_argument("plane " + std::to_string(p) + " stride " + std::to_string(stride) +
                                  " is shorter than a row of " + std::to_string(planes[p].size(1)) + " bytes");
    at::Tensor dst = at::from_blob(GST_VIDEO_FRAME_PLANE_DATA(frame, p), planes[p].sizes(), {stride, 1}, options);
    dst.copy_(planes[p], /*non_blocking=*/true);
  }
}

}  // namespace la::gst

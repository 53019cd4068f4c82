// Decodes an image file (any format GStreamer's decodebin knows: PNG, JPEG,
// ...) into RGB pixels, for liveavatargen's reference image.
#pragma once

#include <ATen/core/Tensor.h>
#include <string>

namespace la::gst {

// [h, w, 3] uint8. Throws std::runtime_error naming the file and what
// GStreamer reported (missing file, unknown format, missing decoder plugin).
at::Tensor load_image_rgb(const std::string& path);

}  // namespace la::gst

#include "engine/video/reference_image.h"

#include <ATen/ATen.h>
#include <cmath>
#include <stdexcept>

#include "engine/io/tensor_view.h"

namespace la::video {

at::Tensor prepare_reference_image(const at::Tensor& rgb, Size out) {
  if (rgb.dim() != 3 || rgb.size(2) != 3 || rgb.scalar_type() != at::kByte || rgb.size(0) < 1 || rgb.size(1) < 1)
    throw std::invalid_argument("reference image must be [h, w, 3] uint8 RGB, got " + io::shape_string(rgb.sizes()));
  const int64_t in_h = rgb.size(0), in_w = rgb.size(1);
  // torchvision Resize(int): the short side becomes `side`, the long side int(side * long / short).
  const int64_t side = std::min(out.height, out.width);
  int64_t rh, rw;
  if (in_h <= in_w) {
    rh = side;
    rw = static_cast<int64_t>(static_cast<double>(side) * in_w / in_h);
  } else {
    rw = side;
    rh = static_cast<int64_t>(static_cast<double>(side) * in_h / in_w);
  }
  const at::Tensor chw = rgb.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  at::Tensor resized = at::_upsample_bilinear2d_aa(chw, {rh, rw}, /*align_corners=*/false);
  resized = resized.round().clamp(0, 255);  // PIL works on 8-bit images
  // CenterCrop: pad a short axis (left = d/2, right = d - d/2), then crop at
  // round((in - out) / 2), rounding half to even as Python does.
  const int64_t pad_h = std::max<int64_t>(0, out.height - rh), pad_w = std::max<int64_t>(0, out.width - rw);
  if (pad_h || pad_w)
    resized = at::constant_pad_nd(resized, {pad_w / 2, pad_w - pad_w / 2, pad_h / 2, pad_h - pad_h / 2}, 0);
  const int64_t top = static_cast<int64_t>(std::nearbyint((resized.size(2) - out.height) / 2.0));
  const int64_t left = static_cast<int64_t>(std::nearbyint((resized.size(3) - out.width) / 2.0));
  const at::Tensor crop = resized.slice(2, top, top + out.height).slice(3, left, left + out.width);
  return (crop.squeeze(0) / 255.0 * 2.0 - 1.0).contiguous();
}

}  // namespace la::video

#include "engine/video/pixel_convert.h"

#include <ATen/ATen.h>
#include <stdexcept>

namespace la::video {
namespace {

// BT.601 luma weights and limited-range scales.
constexpr double kKr = 0.299, kKg = 0.587, kKb = 0.114;

at::Tensor quantise_rounded(const at::Tensor& x) { return x.round().clamp(0, 255).to(at::kByte); }

}  // namespace

PixelFormat pixel_format_from_name(const std::string& n) {
  if (n == "RGB") return PixelFormat::kRGB;
  if (n == "RGBA") return PixelFormat::kRGBA;
  if (n == "I420") return PixelFormat::kI420;
  if (n == "NV12") return PixelFormat::kNV12;
  throw std::invalid_argument("unsupported pixel format '" + n + "' (expected RGB, RGBA, I420 or NV12)");
}

const char* pixel_format_name(PixelFormat f) {
  switch (f) {
    case PixelFormat::kRGB: return "RGB";
    case PixelFormat::kRGBA: return "RGBA";
    case PixelFormat::kI420: return "I420";
    case PixelFormat::kNV12: return "NV12";
  }
  return "?";
}

int64_t frame_bytes(PixelFormat f, int64_t w, int64_t h) {
  switch (f) {
    case PixelFormat::kRGB: return w * h * 3;
    case PixelFormat::kRGBA: return w * h * 4;
    case PixelFormat::kI420:
    case PixelFormat::kNV12: return w * h + 2 * (w / 2) * (h / 2);
  }
  return 0;
}

at::Tensor to_pixels(const at::Tensor& video, PixelFormat format) {
  if (video.dim() != 4 || video.size(0) != 3)
    throw std::invalid_argument("video must be [3,T,H,W]");
  const int64_t t = video.size(1), h = video.size(2), w = video.size(3);
  const at::Tensor unit = (video.to(at::kFloat).clamp(-1, 1) + 1) / 2;  // [3,T,H,W] in [0,1]

  if (format == PixelFormat::kRGB || format == PixelFormat::kRGBA) {
    at::Tensor rgb = (unit * 255).to(at::kByte).permute({1, 2, 3, 0});  // truncation, as the reference
    if (format == PixelFormat::kRGBA) rgb = at::cat({rgb, at::full({t, h, w, 1}, 255, rgb.options())}, 3);
    return rgb.contiguous().view({t, -1});
  }

  if (h % 2 || w % 2) throw std::invalid_argument("I420/NV12 need even width and height");
  const at::Tensor r = unit[0], g = unit[1], b = unit[2];  // [T,H,W]
  const at::Tensor y = 16 + 219 * (kKr * r + kKg * g + kKb * b);
  const at::Tensor cb_full = 128 + 224 * (0.5 / (1 - kKb)) * (b - (kKr * r + kKg * g + kKb * b));
  const at::Tensor cr_full = 128 + 224 * (0.5 / (1 - kKr)) * (r - (kKr * r + kKg * g + kKb * b));
  // 2x2 averages of the full-resolution chroma (chroma sited between the pixels).
  const at::Tensor cb = at::avg_pool2d(cb_full.unsqueeze(1), {2, 2}).squeeze(1);
  const at::Tensor cr = at::avg_pool2d(cr_full.unsqueeze(1), {2, 2}).squeeze(1);
  const at::Tensor y8 = quantise_rounded(y).view({t, -1});
  if (format == PixelFormat::kI420)
    return at::cat({y8, quantise_rounded(cb).view({t, -1}), quantise_rounded(cr).view({t, -1})}, 1);
  const at::Tensor uv = at::stack({quantise_rounded(cb), quantise_rounded(cr)}, 3).view({t, -1});
  return at::cat({y8, uv}, 1);
}

std::vector<at::Tensor> packed_planes(const at::Tensor& packed, PixelFormat format, int64_t width, int64_t height) {
  if (packed.dim() != 1 || packed.numel() != frame_bytes(format, width, height))
    throw std::invalid_argument("a packed " + std::string(pixel_format_name(format)) + " frame of " +
                                std::to_string(width) + "x" + std::to_string(height) + " is " +
                                std::to_string(frame_bytes(format, width, height)) + " bytes in one dimension");
  switch (format) {
    case PixelFormat::kRGB: return {packed.view({height, width * 3})};
    case PixelFormat::kRGBA: return {packed.view({height, width * 4})};
    case PixelFormat::kI420: {
      const int64_t luma = width * height, chroma = (width / 2) * (height / 2);
      return {packed.slice(0, 0, luma).view({height, width}),
              packed.slice(0, luma, luma + chroma).view({height / 2, width / 2}),
              packed.slice(0, luma + chroma).view({height / 2, width / 2})};
    }
    case PixelFormat::kNV12: {
      const int64_t luma = width * height;
      return {packed.slice(0, 0, luma).view({height, width}), packed.slice(0, luma).view({height / 2, width})};
    }
  }
  return {};
}

}  // namespace la::video

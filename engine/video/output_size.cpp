#include "engine/video/output_size.h"

#include <cmath>
#include <stdexcept>

namespace la::video {

int64_t parse_area(const std::string& size) {
  const auto sep = size.find_first_of("*x");
  size_t used_w = 0, used_h = 0;
  int64_t w = 0, h = 0;
  try {
    if (sep == std::string::npos) throw std::invalid_argument("no separator");
    w = std::stoll(size.substr(0, sep), &used_w);
    h = std::stoll(size.substr(sep + 1), &used_h);
  } catch (const std::exception&) {
    used_w = 0;
  }
  if (used_w == 0 || used_w != sep || used_h != size.size() - sep - 1 || w < 64 || h < 64 || w > 16384 || h > 16384)
    throw std::invalid_argument("size '" + size + "' must be an area like 720*400 (both sides 64..16384)");
  return w * h;
}

Size output_size_for_area(int64_t height, int64_t width, int64_t area) {
  if (height < 1 || width < 1 || area < 64 * 64) throw std::invalid_argument("output_size_for_area: bad arguments");
  const double hh = static_cast<double>(height), ww = static_cast<double>(width), target = static_cast<double>(area);
  double min_scale = 0.1, max_scale = 1.0;
  if (height * width > area) {
    // The reference's own quadratic, including its "- 2ac".
    const double d = 63, b = d * (hh + ww), a = hh * ww, c = d * d - target;
    min_scale = (-b + std::sqrt(b * b - 2 * a * c)) / (2 * a);
    max_scale = std::sqrt(target / (hh * ww));
  }
  for (int i = 0; i < 100; ++i) {
    const double scale = max_scale - (max_scale - min_scale) * i / 100;
    const auto h = static_cast<int64_t>(hh * scale), w = static_cast<int64_t>(ww * scale);
    const int64_t ph = h + (64 - h % 64) % 64, pw = w + (64 - w % 64) % 64;
    if (ph * pw <= area) return {ph, pw};
  }
  const double aspect = ww / hh;
  int64_t tw = static_cast<int64_t>(std::floor(std::sqrt(target * aspect) / 64) * 64);
  int64_t th = static_cast<int64_t>(std::floor(std::sqrt(target / aspect) / 64) * 64);
  if (tw >= width || th >= height) {
    tw = width / 64 * 64;
    th = height / 64 * 64;
  }
  if (tw < 64 || th < 64) throw std::invalid_argument("image too small for a 64-divisible output size");
  return {th, tw};
}

}  // namespace la::video

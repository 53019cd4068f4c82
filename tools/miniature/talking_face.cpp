#include "tools/miniature/talking_face.h"

#include <ATen/ATen.h>
#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace la::miniature {
namespace {

// The face is drawn in a 128-unit square, scaled to the output size.
constexpr double kUnits = 128;
constexpr double kMouthX = 64, kMouthY = 88;
// The measurement band: columns around the mouth's centre, rows from the nose
// to the chin (the head moves at most 3 units).
constexpr double kBandX0 = 58, kBandX1 = 70, kBandY0 = 74, kBandY1 = 110;
constexpr double kDarkLuma = 70;

struct Rgb {
  double r, g, b;
};

// Paints a filled ellipse with a one-unit soft edge.
void paint_ellipse(at::Tensor& img, const at::Tensor& ux, const at::Tensor& uy, double cx, double cy, double rx,
                   double ry, Rgb c) {
  const at::Tensor r = at::sqrt(at::square((ux - cx) / rx) + at::square((uy - cy) / ry));
  const at::Tensor a = at::clamp((1.0 - r) * std::min(rx, ry) + 0.5, 0.0, 1.0);
  const at::Tensor colour = at::tensor({c.r / 127.5 - 1, c.g / 127.5 - 1, c.b / 127.5 - 1}).view({3, 1, 1});
  img = img * (1 - a) + colour * a;
}

}  // namespace

std::vector<float> loudness_envelope(const float* samples, int64_t count, int64_t frames) {
  std::vector<float> raw(static_cast<size_t>(std::max<int64_t>(frames, 0)));
  for (int64_t f = 0; f < frames; ++f) {
    double sum = 0;
    for (int64_t i = f * kSamplesPerFrame; i < (f + 1) * kSamplesPerFrame; ++i) {
      const double s = i < count ? samples[i] : 0.0;
      sum += s * s;
    }
    const double db = 20 * std::log10(std::sqrt(sum / kSamplesPerFrame) + 1e-6);
    raw[f] = static_cast<float>(std::clamp((db + 50) / 30, 0.0, 1.0));
  }
  std::vector<float> out(raw.size());
  for (int64_t f = 0; f < frames; ++f) {
    const float prev = raw[std::max<int64_t>(f - 1, 0)], next = raw[std::min(f + 1, frames - 1)];
    out[f] = 0.25f * prev + 0.5f * raw[f] + 0.25f * next;
  }
  return out;
}

std::vector<FacePose> poses_from_envelope(const std::vector<float>& envelope) {
  const int64_t n = static_cast<int64_t>(envelope.size());
  std::vector<FacePose> poses(envelope.size());
  for (int64_t f = 0; f < n; ++f) {
    double slow = 0;
    for (int64_t k = -3; k <= 3; ++k) slow += envelope[std::clamp<int64_t>(f + k, 0, n - 1)];
    poses[f].mouth_open = envelope[f];
    poses[f].head_dy = static_cast<float>(-3.0 * slow / 7);
  }
  return poses;
}

at::Tensor draw_face(const FacePose& p, int64_t size) {
  if (size < 16 || size % 16) throw std::invalid_argument("face size must be a multiple of 16, got " + std::to_string(size));
  const double scale = kUnits / static_cast<double>(size);
  const at::Tensor coord = (at::arange(size, at::kDouble) + 0.5) * scale;
  const at::Tensor ux = coord.view({1, 1, size}).expand({1, size, size});
  const at::Tensor uy = coord.view({1, size, 1}).expand({1, size, size});
  // Background: a vertical blue-grey gradient.
  at::Tensor img = at::stack({(70 - 30 * uy / kUnits) / 127.5 - 1, (90 - 40 * uy / kUnits) / 127.5 - 1,
                              (120 - 50 * uy / kUnits) / 127.5 - 1})
                       .squeeze(1);
  const double dy = p.head_dy;
  const double open = std::clamp<double>(p.mouth_open, 0, 1);
  paint_ellipse(img, ux, uy, 64, 142, 52, 30, {60, 110, 80});          // shoulders
  paint_ellipse(img, ux, uy, 64, 104 + dy * 0.5, 13, 18, {215, 168, 138});  // neck
  paint_ellipse(img, ux, uy, 64, 38 + dy, 37, 28, {70, 45, 30});        // hair
  paint_ellipse(img, ux, uy, 64, 66 + dy, 32, 38, {225, 180, 150});     // face
  for (double ex : {50.0, 78.0}) {
    paint_ellipse(img, ux, uy, ex, 49 + dy, 8, 1.8, {70, 45, 30});      // brow
    paint_ellipse(img, ux, uy, ex, 57 + dy, 7, 4.5, {245, 245, 240});   // eye
    paint_ellipse(img, ux, uy, ex, 57 + dy, 3, 3, {30, 30, 40});        // pupil
  }
  paint_ellipse(img, ux, uy, 64, 72 + dy, 3, 5, {205, 155, 125});       // nose
  paint_ellipse(img, ux, uy, kMouthX, kMouthY + dy, 13, 3 + 9 * open, {190, 90, 90});    // lips
  paint_ellipse(img, ux, uy, kMouthX, kMouthY + dy, 11, 0.8 + 9 * open, {40, 10, 15});   // mouth
  return img.to(at::kFloat).clamp(-1, 1);
}

at::Tensor draw_video(const std::vector<FacePose>& poses, int64_t size) {
  std::vector<at::Tensor> frames;
  frames.reserve(poses.size());
  for (const auto& p : poses) frames.push_back(draw_face(p, size));
  return at::stack(frames, 1);
}

double measure_mouth_opening(const at::Tensor& rgb_frame) {
  if (rgb_frame.dim() != 3 || rgb_frame.size(2) != 3 || rgb_frame.size(0) != rgb_frame.size(1))
    throw std::invalid_argument("mouth measurement needs a square RGB frame [size, size, 3]");
  const int64_t size = rgb_frame.size(0);
  const double px = static_cast<double>(size) / kUnits;
  const int64_t x0 = static_cast<int64_t>(kBandX0 * px), x1 = static_cast<int64_t>(kBandX1 * px);
  const int64_t y0 = static_cast<int64_t>(kBandY0 * px), y1 = static_cast<int64_t>(kBandY1 * px);
  const at::Tensor band = rgb_frame.slice(0, y0, y1).slice(1, x0, x1).to(at::kDouble);
  const at::Tensor luma = band.select(2, 0) * 0.299 + band.select(2, 1) * 0.587 + band.select(2, 2) * 0.114;
  const double dark_rows = (luma < kDarkLuma).to(at::kDouble).sum(0).mean().item<double>();
  return dark_rows / px;
}

LipSync measure_lip_sync(const std::vector<double>& mouth, const std::vector<float>& envelope, int max_lag) {
  const int64_t n = static_cast<int64_t>(std::min(mouth.size(), envelope.size()));
  if (n < 4 * max_lag + 8) throw std::invalid_argument("lip sync needs at least " + std::to_string(4 * max_lag + 8) + " frames, got " + std::to_string(n));
  auto corr_at = [&](int lag) {
    double sm = 0, se = 0, smm = 0, see = 0, sme = 0;
    int64_t k = 0;
    for (int64_t i = std::max<int64_t>(0, -lag); i < n && i + lag < n; ++i) {
      const double m = mouth[i + lag], e = envelope[i];
      sm += m, se += e, smm += m * m, see += e * e, sme += m * e;
      ++k;
    }
    const double cov = sme / k - (sm / k) * (se / k);
    const double vm = smm / k - (sm / k) * (sm / k), ve = see / k - (se / k) * (se / k);
    return vm > 0 && ve > 0 ? cov / std::sqrt(vm * ve) : 0.0;
  };
  LipSync r;
  r.frames = n;
  r.correlation = corr_at(0);
  r.peak_correlation = -2;
  for (int lag = -max_lag; lag <= max_lag; ++lag) {
    const double c = corr_at(lag);
    if (c > r.peak_correlation) r.peak_correlation = c, r.peak_lag_frames = lag;
  }
  double frac = 0;
  if (std::abs(r.peak_lag_frames) < max_lag) {
    const double a = corr_at(r.peak_lag_frames - 1), b = r.peak_correlation, c = corr_at(r.peak_lag_frames + 1);
    const double den = a - 2 * b + c;
    if (den < 0) frac = std::clamp(0.5 * (a - c) / den, -0.5, 0.5);
  }
  r.offset_ms = (r.peak_lag_frames + frac) * 1000.0 / kFps;
  return r;
}

}  // namespace la::miniature

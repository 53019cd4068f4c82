#include "engine/models/s2v_dit/rope.h"

#include <ATen/ATen.h>
#include <cmath>
#include <stdexcept>

namespace la::models {
namespace {

// numpy.linspace(start, stop, num).astype(int): start + k*step in double, the
// last element exactly stop, truncated toward zero.
std::vector<int64_t> linspace_int(double start, double stop, int64_t num) {
  std::vector<int64_t> out;
  const double step = num > 1 ? (stop - start) / static_cast<double>(num - 1) : 0.0;
  for (int64_t k = 0; k < num; ++k) {
    const double v = (num > 1 && k == num - 1) ? stop : static_cast<double>(k) * step + start;
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

// Angles p * theta^(-2j/m) for j < m/2, float64, for a list of positions.
at::Tensor angles(const std::vector<int64_t>& positions, int64_t m, double theta) {
  at::Tensor out = at::empty({static_cast<int64_t>(positions.size()), m / 2}, at::kDouble);
  auto a = out.accessor<double, 2>();
  for (size_t i = 0; i < positions.size(); ++i)
    for (int64_t j = 0; j < m / 2; ++j) {
      const double inv = 1.0 / std::pow(theta, static_cast<double>(2 * j) / static_cast<double>(m));
      a[static_cast<int64_t>(i)][j] = static_cast<double>(positions[i]) * inv;
    }
  return out;
}

}  // namespace

RopeTable rope_table(const std::vector<RopeGroup>& groups, int64_t head_dim, double theta) {
  if (head_dim % 2 != 0 || head_dim < 6) throw std::invalid_argument("RoPE head_dim must be even and >= 6");
  const int64_t c = head_dim / 2;  // complex pairs
  const int64_t c_hw = c / 3, c_t = c - 2 * c_hw;
  std::vector<at::Tensor> parts;
  for (const auto& g : groups) {
    const int64_t sf = g.end[0] - g.start[0], sh = g.end[1] - g.start[1], sw = g.end[2] - g.start[2];
    if (sf <= 0 || sh <= 0 || sw <= 0) continue;
    if (g.start[0] * g.end[0] < 0) throw std::invalid_argument("a RoPE group may not straddle frame 0");
    const bool negative = g.start[0] < 0;
    const auto f_pos = negative ? linspace_int(static_cast<double>(-g.start[0]), static_cast<double>(-g.range[0] - g.start[0] + 1), sf)
                                : linspace_int(static_cast<double>(g.start[0]), static_cast<double>(g.range[0] + g.start[0] - 1), sf);
    const auto h_pos = linspace_int(static_cast<double>(g.start[1]), static_cast<double>(g.range[1] + g.start[1] - 1), sh);
    const auto w_pos = linspace_int(static_cast<double>(g.start[2]), static_cast<double>(g.range[2] + g.start[2] - 1), sw);
    at::Tensor af = angles(f_pos, 2 * c_t, theta);
    if (negative) af = -af;  // the conjugate: a negative position
    const at::Tensor ah = angles(h_pos, 2 * c_hw, theta), aw = angles(w_pos, 2 * c_hw, theta);
    parts.push_back(at::cat({af.view({sf, 1, 1, c_t}).expand({sf, sh, sw, c_t}),
                             ah.view({1, sh, 1, c_hw}).expand({sf, sh, sw, c_hw}),
                             aw.view({1, 1, sw, c_hw}).expand({sf, sh, sw, c_hw})},
                            3)
                        .reshape({sf * sh * sw, c}));
  }
  const at::Tensor all = parts.empty() ? at::empty({0, c}, at::kDouble) : at::cat(parts, 0);
  // cos/sin of the float64 angle, rounded to fp16 as the reference's complex32 table.
  return {at::cos(all).to(at::kHalf).to(at::kFloat), at::sin(all).to(at::kHalf).to(at::kFloat)};
}

std::vector<RopeGroup> shift_frames(std::vector<RopeGroup> groups, int64_t frames, size_t count) {
  for (size_t i = 0; i < groups.size() && i < count; ++i) {
    groups[i].start[0] += frames;
    groups[i].end[0] += frames;
  }
  return groups;
}

std::vector<RopeGroup> noisy_block_groups(int64_t first_frame, int64_t frames, int64_t grid_h, int64_t grid_w) {
  return {{{first_frame, 0, 0}, {first_frame + frames, grid_h, grid_w}, {frames, grid_h, grid_w}}};
}

std::vector<RopeGroup> sink_groups(int64_t latent_h, int64_t latent_w) {
  const int64_t gh = latent_h / 2, gw = latent_w / 2;
  return {
      {{30, 0, 0}, {31, gh, gw}, {1, gh, gw}},                          // reference frame
      {{-1, 0, 0}, {0, gh, gw}, {1, gh, gw}},                           // post: the newest motion frame
      {{-3, 0, 0}, {-2, latent_h / 4, latent_w / 4}, {2, gh, gw}},      // 2x: two frames packed
      {{-19, 0, 0}, {-15, latent_h / 8, latent_w / 8}, {16, gh, gw}},   // 4x: sixteen frames in four
  };
}

}  // namespace la::models

// 3-D rotary position tables of the S2V DiT, as the reference builds them
// (s2v_utils.rope_precompute): token groups on a (frame, height, width) grid,
// positions sampled by numpy linspace truncated to int, negative frame starts
// conjugated, and every cos/sin rounded to fp16 (the reference writes them
// into a complex32 tensor). Angles are computed per position in float64
// (p * theta^(-2j/m)), which equals the reference's 45,000-row table inside its
// range and keeps working past it, so streams are unbounded in length.
#pragma once

#include <ATen/core/Tensor.h>
#include <array>
#include <vector>

namespace la::models {

// One grid group: tokens for frames [start[0], end[0]), rows [start[1], end[1]),
// columns [start[2], end[2]), whose positions span `range` (resampled when the
// group is coarser than the range, as the frame-packed motion tokens are).
struct RopeGroup {
  std::array<int64_t, 3> start, end, range;
};

struct RopeTable {
  at::Tensor cos, sin;  // [tokens, head_dim/2] float32, fp16-exact values
};

// Tokens of all groups in order (f outer, then h, then w within a group).
RopeTable rope_table(const std::vector<RopeGroup>& groups, int64_t head_dim, double theta = 10000.0);

// The reference's rollout_grid_sizes: moves the frame start and end of the
// first `count` groups by `frames`.
std::vector<RopeGroup> shift_frames(std::vector<RopeGroup> groups, int64_t frames, size_t count);

// The groups of one block of noisy latents: 3 frames at temporal position n.. of
// an h' x w' token grid.
std::vector<RopeGroup> noisy_block_groups(int64_t first_frame, int64_t frames, int64_t grid_h, int64_t grid_w);

// The sink's cond groups: the reference frame at temporal position 30, then
// the frame-packed motion tokens (post at -1, 2x at -3, 4x at -19..-4), for a
// latent of latent_h x latent_w (token grid latent/2).
std::vector<RopeGroup> sink_groups(int64_t latent_h, int64_t latent_w);

}  // namespace la::models

// The flow-matching Euler sampler the reference runs (diffusers'
// FlowMatchEulerDiscreteScheduler with num_train_timesteps=1000, shift=3,
// set_timesteps(steps)), with its float32/float64 steps reproduced exactly.
#pragma once

#include <ATen/core/Tensor.h>
#include <vector>

namespace la::sampler {

struct FlowMatchSchedule {
  std::vector<float> timesteps;  // `steps` values fed to the DiT, 1000 first
  std::vector<float> sigmas;     // steps + 1 values, ending in 0
};

// Throws std::invalid_argument unless 1 <= steps <= num_train_timesteps.
// For 4 steps: timesteps 1000, 857.69232, 602.15057, 8.9285717.
FlowMatchSchedule flow_match_schedule(int steps, double shift = 3.0, int num_train_timesteps = 1000);

// One Euler step x + (sigma_next - sigma) * velocity, as diffusers computes
// it: the sample in float32, the product in the velocity's dtype (a 0-dim
// float32 factor does not promote a bf16 tensor), the result in the
// velocity's dtype.
at::Tensor euler_step(const at::Tensor& x, const at::Tensor& velocity, float sigma, float sigma_next);

}  // namespace la::sampler

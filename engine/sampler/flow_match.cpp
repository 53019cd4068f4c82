#include "engine/sampler/flow_match.h"

#include <ATen/ATen.h>
#include <stdexcept>
#include <string>

namespace la::sampler {
namespace {

// The shift diffusers applies to a sigma: shift*s / (1 + (shift-1)*s).
template <typename T>
T shifted(T sigma, T shift) {
  return shift * sigma / (T(1) + (shift - T(1)) * sigma);
}

}  // namespace

FlowMatchSchedule flow_match_schedule(int steps, double shift, int num_train_timesteps) {
  if (steps < 1 || steps > num_train_timesteps)
    throw std::invalid_argument("sampling steps must be between 1 and " + std::to_string(num_train_timesteps) +
                                ", got " + std::to_string(steps));
  const auto n = static_cast<float>(num_train_timesteps);
  // The training schedule's ends are float32 (the scheduler's __init__ works in
  // float32 tensors): sigma_max = shifted(1) = 1, sigma_min = shifted(1/N).
  const float sigma_max = shifted(1.0f, static_cast<float>(shift));
  const float sigma_min = shifted(1.0f / n, static_cast<float>(shift));
  // set_timesteps: linspace in float64 between the ends in timestep units,
  // back to sigmas, shifted a second time (as diffusers does), then float32.
  const double t_max = static_cast<double>(sigma_max) * num_train_timesteps;
  const double t_min = static_cast<double>(sigma_min) * num_train_timesteps;
  FlowMatchSchedule s;
  for (int i = 0; i < steps; ++i) {
    const double t = steps == 1 ? t_max : t_max + (t_min - t_max) * i / (steps - 1);
    const auto sigma = static_cast<float>(shifted(t / num_train_timesteps, shift));
    s.sigmas.push_back(sigma);
    s.timesteps.push_back(sigma * n);
  }
  s.sigmas.push_back(0.0f);
  return s;
}

at::Tensor euler_step(const at::Tensor& x, const at::Tensor& velocity, float sigma, float sigma_next) {
  const float dt = sigma_next - sigma;  // float32, as the 0-dim tensor difference
  return (x.to(at::kFloat) + velocity * dt).to(velocity.scalar_type());
}

}  // namespace la::sampler

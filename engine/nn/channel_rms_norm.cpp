#include "engine/nn/channel_rms_norm.h"

#include <ATen/ATen.h>
#include <cmath>

namespace la::nn {

at::Tensor channel_rms_norm(const at::Tensor& x, const at::Tensor& gamma) {
  const at::Tensor xf = x.to(at::kFloat);
  const at::Tensor norm = at::linalg_vector_norm(xf, 2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  const double scale = std::sqrt(static_cast<double>(x.size(1)));
  return xf / norm * scale * gamma.to(at::kFloat);
}

}  // namespace la::nn

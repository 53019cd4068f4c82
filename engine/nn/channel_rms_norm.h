// Wan VAE's RMS_norm: x / max(||x||_2 over channels, 1e-12) * sqrt(C) * gamma,
// computed in fp32 (as under the reference's autocast) and returned in fp32.
#pragma once

#include <ATen/core/Tensor.h>

namespace la::nn {

// x: [B, C, ...]; gamma broadcastable to x ([C,1,1,1] or [C,1,1]).
at::Tensor channel_rms_norm(const at::Tensor& x, const at::Tensor& gamma);

}  // namespace la::nn

// The one attention entry point of the engine: everything that attends goes
// through here, so kernel choice (flash / cuDNN / efficient on CUDA, math on
// CPU, picked by scaled_dot_product_attention) is made in one place.
#pragma once

#include <ATen/core/Tensor.h>
#include <optional>

namespace la::nn {

// q [B,H,Lq,D], k/v [B,H,Lk,D]; scale defaults to 1/sqrt(D).
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const std::optional<at::Tensor>& mask = std::nullopt,
                     std::optional<double> scale = std::nullopt);

}  // namespace la::nn

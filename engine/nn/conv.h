// Convolutions as the Wan models use them, on plain tensors. A Conv is the
// weight and bias of one checkpoint module ("<prefix>.weight", ".bias").
#pragma once

#include <ATen/core/Tensor.h>
#include <array>

namespace la::nn {

struct Conv {
  at::Tensor weight;  // [out, in, k...]
  at::Tensor bias;    // [out]
};

// Wan's CausalConv3d: spatial padding on both sides, temporal padding of
// 2*pad_t frames in front only. `history` (may be undefined) holds previous
// frames of this conv's input and replaces that many of the front zeros.
at::Tensor causal_conv3d(const at::Tensor& x, const Conv& conv, std::array<int64_t, 3> padding,
                         std::array<int64_t, 3> stride = {1, 1, 1}, const at::Tensor& history = {});

// Conv2d applied to every frame of a [B,C,T,H,W] video (time folded into batch).
at::Tensor framewise_conv2d(const at::Tensor& x, const Conv& conv, int64_t stride, int64_t padding);

}  // namespace la::nn

#include "engine/nn/conv.h"

#include <ATen/Functions.h>

namespace la::nn {

at::Tensor causal_conv3d(const at::Tensor& x, const Conv& conv, std::array<int64_t, 3> padding,
                         std::array<int64_t, 3> stride, const at::Tensor& history) {
  // Inputs may arrive in fp32 (norm outputs) for bf16 weights: the conv runs
  // in the weight dtype, as under the reference's autocast.
  at::Tensor input = x.to(conv.weight.scalar_type());
  int64_t front = 2 * padding[0];
  if (history.defined() && front > 0) {
    input = at::cat({history.to(input.scalar_type()), input}, 2);
    front -= history.size(2);
  }
  // F.pad order: (w_left, w_right, h_top, h_bottom, t_front, t_back)
  if (padding[2] || padding[1] || front)
    input = at::constant_pad_nd(input, {padding[2], padding[2], padding[1], padding[1], front, 0});
  return at::conv3d(input, conv.weight, conv.bias, {stride[0], stride[1], stride[2]});
}

at::Tensor framewise_conv2d(const at::Tensor& x, const Conv& conv, int64_t stride, int64_t padding) {
  const auto b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  at::Tensor frames = x.to(conv.weight.scalar_type()).permute({0, 2, 1, 3, 4}).reshape({b * t, c, h, w});
  at::Tensor y = at::conv2d(frames, conv.weight, conv.bias, {stride, stride}, {padding, padding});
  return y.reshape({b, t, y.size(1), y.size(2), y.size(3)}).permute({0, 2, 1, 3, 4});
}

}  // namespace la::nn

#include "engine/nn/conv.h"

#include <ATen/ATen.h>

namespace la::nn {
namespace {

// On the CPU, ATen's conv3d is 2-6x slower than oneDNN's conv2d for the VAE's
// shapes (few channels, large frames; measured 96 vs 44 ms at 8x384x704), so
// a temporal-stride-1 conv3d is computed as the sum over kernel taps kt of a
// conv2d on the frames it touches. Same arithmetic, another summation order.
at::Tensor conv3d_as_conv2d_sum(const at::Tensor& x, const Conv& conv, int64_t stride_h, int64_t stride_w) {
  const int64_t kt = conv.weight.size(2);
  const int64_t b = x.size(0), c = x.size(1), t_out = x.size(2) - kt + 1, h = x.size(3), w = x.size(4);
  at::Tensor sum;
  for (int64_t k = 0; k < kt; ++k) {
    const at::Tensor frames = x.slice(2, k, k + t_out).transpose(1, 2).reshape({b * t_out, c, h, w});
    const at::Tensor y = at::conv2d(frames, conv.weight.select(2, k), k == 0 ? conv.bias : at::Tensor(),
                                    {stride_h, stride_w});
    sum = k == 0 ? y : sum.add_(y);
  }
  return sum.reshape({b, t_out, sum.size(1), sum.size(2), sum.size(3)}).transpose(1, 2);
}

}  // namespace

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
  if (input.is_cuda() || stride[0] != 1) return at::conv3d(input, conv.weight, conv.bias, {stride[0], stride[1], stride[2]});
  return conv3d_as_conv2d_sum(input, conv, stride[1], stride[2]);
}

at::Tensor framewise_conv2d(const at::Tensor& x, const Conv& conv, int64_t stride, int64_t padding) {
  const auto b = x.size(0), c = x.size(1), t = x.size(2), h = x.size(3), w = x.size(4);
  at::Tensor frames = x.to(conv.weight.scalar_type()).permute({0, 2, 1, 3, 4}).reshape({b * t, c, h, w});
  at::Tensor y = at::conv2d(frames, conv.weight, conv.bias, {stride, stride}, {padding, padding});
  return y.reshape({b, t, y.size(1), y.size(2), y.size(3)}).permute({0, 2, 1, 3, 4});
}

}  // namespace la::nn

// fp8 (e4m3) linear layers as the reference's --fp8 runs them
// (liveavatar/utils/fp8_linear.py): weights quantised once with one scale per
// tensor, activations quantised per call with one dynamic scale per tensor,
// the product by _scaled_mm with fast accumulation into bf16, the result cast
// back to the input's dtype. Scale rule for both: s = min(448 / max(amax,
// 1e-12), 448), value = e4m3(clamp(x * s, +-448)) with the product in fp32
// (one rounding, as the reference's compiled quantiser does).
#pragma once

#include <ATen/core/Tensor.h>

namespace la::nn {

struct Fp8Weight {
  at::Tensor weight;  // [out, in] float8_e4m3fn
  at::Tensor scale;   // 0-dim float32: 1 / s, multiplies the product back
};

Fp8Weight quantize_fp8(const at::Tensor& weight);

// x [..., in] -> [..., out] in x's dtype; bias may be undefined.
at::Tensor fp8_linear(const at::Tensor& x, const Fp8Weight& w, const at::Tensor& bias);

}  // namespace la::nn

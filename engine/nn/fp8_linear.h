// fp8 (e4m3) linear layers as the reference's --fp8 runs them
// (liveavatar/utils/fp8_linear.py): weights quantised once with one scale per
// tensor, activations quantised per call with one dynamic scale per tensor,
// the product by _scaled_mm with fast accumulation into bf16, the result cast
// back to the input's dtype. Scale rule for both: s = min(448 / max(amax,
// 1e-12), 448), value = e4m3(clamp(x * s, +-448)) with the product in fp32
// (one rounding, as the reference's compiled quantiser does).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace la::nn {

// Where fp8 linears would run: the CPU, or a CUDA device of compute
// capability major.minor.
struct Fp8Target {
  bool cuda = false;
  int major = 0, minor = 0;
};

// The target of `device` (its compute capability asked from the runtime).
Fp8Target fp8_target(const c10::Device& device);

// Whether _scaled_mm can run linears of these weight shapes ([out, in]) on
// `target`: "" when it can, else why not. On CUDA it needs compute
// capability >= 8.9 (Ada, Hopper and later) and both dimensions of every
// weight a multiple of 16 (cuBLASLt's fp8 layout); the CPU kernel has neither
// limit. The caller adds what to do (fp8=false) and names the device.
std::string fp8_unsupported_reason(const Fp8Target& target, const std::vector<std::array<int64_t, 2>>& weight_shapes);

struct Fp8Weight {
  at::Tensor weight;  // [out, in] float8_e4m3fn
  at::Tensor scale;   // 0-dim float32: 1 / s, multiplies the product back
};

// `weight` [out, in] (made contiguous first: _scaled_mm needs its transpose
// column-major).
Fp8Weight quantize_fp8(const at::Tensor& weight);

// x [..., in] -> [..., out] in x's dtype; bias may be undefined.
at::Tensor fp8_linear(const at::Tensor& x, const Fp8Weight& w, const at::Tensor& bias);

}  // namespace la::nn

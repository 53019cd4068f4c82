// Helpers of the bf16-vs-fp32 accuracy tests (parity-dit-bf16,
// parity-text-audio-bf16):
// the device the bf16 side runs on, the error figures, and their recording.
//
// The fp32 side always runs on the CPU. The bf16 side runs on
// $LA_TEST_DEVICE (default "cpu"; e.g. "cuda" or "cuda:1"), so on a GPU
// machine the same test compares the GPU's bf16 kernels with CPU fp32 under
// the same documented bound.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/common/figure.h"

namespace la::test {

// $LA_TEST_DEVICE, default cpu. A CUDA device that is not there fails the
// test (a skip would hide that the GPU check did not run).
inline at::Device bf16_test_device() {
  const char* env = std::getenv("LA_TEST_DEVICE");
  const at::Device device(env && *env ? std::string(env) : std::string("cpu"));
  if (device.is_cuda() && !at::hasCUDA())
    ADD_FAILURE() << "LA_TEST_DEVICE=" << env << " but this LibTorch sees no CUDA device";
  return device;
}

struct ErrorFigures {
  double max_abs = 0;       // max |got - ref|
  double rms_ref = 0;       // sqrt(mean(ref^2))
  double max_over_rms = 0;  // max |got - ref| / rms(ref): the worst element on the tensor's own scale
  double rel_l2 = 0;        // ||got - ref|| / ||ref||
};

// got (any device/dtype) against ref (fp32), in float64.
inline ErrorFigures error_figures(const at::Tensor& got, const at::Tensor& ref) {
  const at::Tensor g = got.to(at::kCPU, at::kDouble), r = ref.to(at::kCPU, at::kDouble);
  EXPECT_EQ(g.sizes(), r.sizes());
  const at::Tensor d = g - r;
  ErrorFigures f;
  f.max_abs = d.abs().max().item<double>();
  f.rms_ref = r.pow(2).mean().sqrt().item<double>();
  f.max_over_rms = f.max_abs / f.rms_ref;
  f.rel_l2 = (d.norm() / r.norm()).item<double>();
  return f;
}

// The worst of two sets of figures, field by field.
inline ErrorFigures worst(const ErrorFigures& a, const ErrorFigures& b) {
  return {std::max(a.max_abs, b.max_abs), std::max(a.rms_ref, b.rms_ref), std::max(a.max_over_rms, b.max_over_rms),
          std::max(a.rel_l2, b.rel_l2)};
}

// Prints and records (record_doc_figure: property "figure:<key>") a measured value.
inline void record_figure(const std::string& key, double value) {
  std::printf("[figure] %s = %.3g\n", key.c_str(), value);
  record_doc_figure(key, value);
}

// Records key.rel_l2 and key.max_over_rms and checks them against their bounds. A bf16 result
// equal to the float32 one is refused too: it was not computed in bf16.
inline void expect_within(const std::string& key, const ErrorFigures& f, double rel_l2_bound,
                          double max_over_rms_bound) {
  record_figure(key + ".rel_l2", f.rel_l2);
  record_figure(key + ".max_over_rms", f.max_over_rms);
  EXPECT_GT(f.rel_l2, 0.0) << key << ": bf16 equals fp32 exactly, so it did not run in bf16";
  EXPECT_LE(f.rel_l2, rel_l2_bound) << key << ": relative L2 error of bf16 against fp32";
  EXPECT_LE(f.max_over_rms, max_over_rms_bound) << key << ": max |d| / rms(fp32) of bf16 against fp32";
}

}  // namespace la::test

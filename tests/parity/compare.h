// Tolerance checks for parity tests, reporting the worst element.
#pragma once

#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>
#include <string>

namespace la::test {

// max|got - ref| <= rel * max(1, max|ref|), with shapes equal.
// Both print "label: max|d| = ... (limit ...)" so test logs carry the measured error.
::testing::AssertionResult close_rel(const at::Tensor& got, const at::Tensor& ref, double rel,
                                     const std::string& label);
// max|got - ref| <= atol.
::testing::AssertionResult close_abs(const at::Tensor& got, const at::Tensor& ref, double atol,
                                     const std::string& label);

// The DiT's statistical check (fixtures README: the bf16 round trip makes rare
// elements differ by ~1e-3 while the bulk stays at fp32 noise):
// max|d| <= max_abs, 99th percentile <= p99, median <= median.
::testing::AssertionResult close_stats(const at::Tensor& got, const at::Tensor& ref, double max_abs, double p99,
                                       double median, const std::string& label);

// What the last of the checks above measured (p99 and median: close_stats only),
// for tests that record a figure the docs quote: RecordProperty("figure:KEY", ...).
struct Diff {
  double max_abs = 0, p99 = 0, median = 0;
};
Diff last_diff();

}  // namespace la::test

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

}  // namespace la::test

#include "tests/parity/compare.h"

#include <ATen/ATen.h>
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "engine/io/tensor_view.h"

namespace la::test {
namespace {

thread_local Diff last;

::testing::AssertionResult check(const at::Tensor& got, const at::Tensor& ref, double limit,
                                 const std::string& label) {
  if (got.sizes() != ref.sizes())
    return ::testing::AssertionFailure() << "shape " << io::shape_string(got.sizes()) << " != reference "
                                         << io::shape_string(ref.sizes());
  const at::Tensor d = (got.to(at::kDouble) - ref.to(at::kDouble)).abs();
  const double max_diff = d.numel() ? d.max().item<double>() : 0.0;
  last = Diff{max_diff, 0, 0};
  std::printf("[parity] %s: max|d| = %.3g (limit %.3g)\n", label.c_str(), max_diff, limit);
  if (!(max_diff <= limit)) {
    std::ostringstream s;
    s << label << ": max|d| = " << max_diff << " > " << limit << " at flat index " << d.argmax().item<int64_t>();
    return ::testing::AssertionFailure() << s.str();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace

::testing::AssertionResult close_rel(const at::Tensor& got, const at::Tensor& ref, double rel,
                                     const std::string& label) {
  const double scale = std::max(1.0, ref.numel() ? ref.abs().max().item<double>() : 0.0);
  return check(got, ref, rel * scale, label);
}

::testing::AssertionResult close_abs(const at::Tensor& got, const at::Tensor& ref, double atol,
                                     const std::string& label) {
  return check(got, ref, atol, label);
}

::testing::AssertionResult close_stats(const at::Tensor& got, const at::Tensor& ref, double max_abs, double p99,
                                       double median, const std::string& label) {
  if (got.sizes() != ref.sizes())
    return ::testing::AssertionFailure() << label << ": shape " << io::shape_string(got.sizes())
                                         << " != reference " << io::shape_string(ref.sizes());
  const at::Tensor d = (got.to(at::kDouble) - ref.to(at::kDouble)).abs().flatten();
  const double mx = d.max().item<double>();
  const double q99 = at::quantile(d, 0.99).item<double>(), q50 = at::quantile(d, 0.5).item<double>();
  last = Diff{mx, q99, q50};
  std::printf("[parity] %s: max|d| = %.3g, p99 = %.3g, median = %.3g (limits %.3g, %.3g, %.3g)\n", label.c_str(), mx,
              q99, q50, max_abs, p99, median);
  if (mx <= max_abs && q99 <= p99 && q50 <= median) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << label << ": max|d| " << mx << ", p99 " << q99 << ", median " << q50
                                       << " exceed " << max_abs << ", " << p99 << ", " << median;
}

Diff last_diff() { return last; }

}  // namespace la::test

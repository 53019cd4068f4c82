// The Python beside the pinned LibTorch ($LA_TORCH_PYTHON, set by the build
// when the venv of scripts/deps.sh has one) cross-checks our files and numbers
// against PyPI's torch, safetensors and tokenizers.
//
// Without it a cross-check cannot run. On a developer's machine that is a
// visible skip; in CI (CI set and not "false"/"0") the Python always exists, so
// its absence is a failure, never a silent pass.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace la::test {

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  return ci && *ci && std::strcmp(ci, "false") != 0 && std::strcmp(ci, "0") != 0;
}

}  // namespace la::test

// Declares `const char* var` = $LA_TORCH_PYTHON; skips the test (fails it in CI)
// when unset. Use at the top of a TEST body.
#define LA_REQUIRE_TORCH_PYTHON(var)                                                           \
  const char* var = std::getenv("LA_TORCH_PYTHON");                                            \
  if (!var || !*var) {                                                                         \
    if (::la::test::running_in_ci()) FAIL() << "LA_TORCH_PYTHON not set in CI: the venv of "   \
                                                "scripts/deps.sh must provide the cross-check"; \
    GTEST_SKIP() << "LA_TORCH_PYTHON not set: no PyTorch venv to cross-check with";            \
  }                                                                                            \
  static_cast<void>(var)

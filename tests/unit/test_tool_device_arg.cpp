// tools/common/device_arg.h: the --device values of the benchmarks.
#include <gtest/gtest.h>

#include <string>

#include "tools/common/device_arg.h"

namespace {

// --device values: LibTorch's own spellings of the CPU and CUDA devices; anything else is a usage
// error naming the flag (LibTorch's parser threw c10::Error with a stack trace, and took cpu:5).
TEST(ToolArgs, DevicesAreCpuOrCudaN) {
  EXPECT_TRUE(la::tools::device_arg("--device", "cpu").is_cpu());
  EXPECT_EQ(la::tools::device_arg("--device", "cuda:1"), c10::Device(c10::kCUDA, 1));
  EXPECT_TRUE(la::tools::device_arg("--device", "cuda").is_cuda());
  for (const char* bad : {"gpu", "cuda:x", "cpu:5", "", "mps", "cuda:-1"}) {
    try {
      la::tools::device_arg("--devices", bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const la::tools::UsageError& e) {
      EXPECT_EQ(std::string(e.what()), std::string("--devices must be cpu or cuda:N, got '") + bad + "'");
    }
  }
}

}  // namespace

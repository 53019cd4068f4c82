// The CUDA runtime and NCCL are linked into every build; without a GPU they
// must report zero devices and a reason instead of failing.
#include <gtest/gtest.h>

#include "engine/runtime/cuda_runtime_info.h"

TEST(CudaRuntimeInfo, ReportsVersionsWithOrWithoutAGpu) {
  const auto info = la::runtime::query_cuda_runtime();
  EXPECT_GE(info.runtime_version, 13000) << "built against the CUDA 13 runtime";
  EXPECT_GE(info.nccl_version, 20000) << "NCCL 2.x linked";
  if (info.device_count == 0) EXPECT_FALSE(info.error.empty()) << "no device: a reason is given";
  else EXPECT_TRUE(info.error.empty());
  std::printf("CUDA runtime %d, driver %d, NCCL %d, %d device(s) %s\n", info.runtime_version,
              info.driver_version, info.nccl_version, info.device_count, info.error.c_str());
}

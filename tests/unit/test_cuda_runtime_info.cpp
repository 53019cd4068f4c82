// The CUDA runtime and NCCL are linked into every build; without a GPU they
// must report zero devices and a reason instead of failing.
#include <gtest/gtest.h>

#include <link.h>

#include <filesystem>
#include <string>
#include <vector>

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

namespace {

// Paths of the shared objects loaded in this process whose file name starts with `stem`.
std::vector<std::string> loaded(const std::string& stem) {
  struct Query {
    std::string stem;
    std::vector<std::string> paths;
  } q{stem, {}};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* q = static_cast<Query*>(data);
        const std::string path = info->dlpi_name ? info->dlpi_name : "";
        if (std::filesystem::path(path).filename().string().rfind(q->stem, 0) == 0) q->paths.push_back(path);
        return 0;
      },
      &q);
  return q.paths;
}

}  // namespace

// One cudart in the process, from the directory the build chose (the torch
// wheel's nvidia/cu*/lib by default): LibTorch's libtorch_cuda and our engine
// share it, so a CUDA toolkit elsewhere on the machine never interposes an
// older runtime. Needs no GPU: the library is loaded either way.
TEST(CudaRuntimeInfo, OneCudaRuntimeTheOneTheBuildChose) {
  la::runtime::query_cuda_runtime();  // make sure the engine's cudart calls were bound
  const auto cudarts = loaded("libcudart.so");
  ASSERT_EQ(cudarts.size(), 1u) << "libcudart loaded " << cudarts.size() << " times";
  const auto dir = std::filesystem::canonical(std::filesystem::path(cudarts[0]).parent_path());
  EXPECT_EQ(dir, std::filesystem::canonical(LA_EXPECTED_CUDART_DIR))
      << "loaded " << cudarts[0] << ", the build linked " << LA_EXPECTED_CUDART_DIR;
  ASSERT_EQ(loaded("libtorch_cuda.so").size(), 1u) << "LibTorch's CUDA backend is linked into every build";
  RecordProperty("cudart", cudarts[0]);
}

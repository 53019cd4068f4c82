// The CUDA runtime and NCCL are linked into every build; without a GPU they
// must report zero devices and a reason instead of failing.
#include <gtest/gtest.h>

#include <link.h>

#include <filesystem>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>

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

// Compute capability for the fp8 decision: 0.0 where there is no device.
TEST(CudaRuntimeInfo, ComputeCapabilityOfMissingDeviceIsZero) {
  const auto info = la::runtime::query_cuda_runtime();
  const auto none = la::runtime::compute_capability(info.device_count);
  EXPECT_EQ(none.major, 0);
  EXPECT_EQ(none.minor, 0);
  if (info.device_count > 0) {
    const auto cc = la::runtime::compute_capability(0);
    EXPECT_GE(cc.major, 5) << "device 0 reports its capability";
    std::printf("device 0: compute capability %d.%d\n", cc.major, cc.minor);
  }
  la::runtime::release_cached_device_memory(c10::Device(c10::kCPU));  // a no-op on the CPU
}

// What offload=true relies on: freed tensors stay reserved by LibTorch's
// caching allocator until release_cached_device_memory hands them back.
TEST(CudaRuntimeInfo, ReleasingCachedMemoryReturnsItToTheDevice) {
  if (la::runtime::query_cuda_runtime().device_count == 0) GTEST_SKIP() << "no CUDA device";
  const c10::Device cuda(c10::kCUDA, 0);
  auto reserved = [] { return c10::cuda::CUDACachingAllocator::getDeviceStats(0).reserved_bytes[0].current; };
  // The caching allocator sets its devices up at the first CUDA allocation; before it,
  // getDeviceStats throws "Invalid device argument" (seen on an H200, LibTorch 2.11).
  at::empty({1}, at::TensorOptions().device(cuda));
  la::runtime::release_cached_device_memory(cuda);
  const int64_t before = reserved();
  {
    const at::Tensor big = at::empty({64 << 20}, at::TensorOptions().dtype(at::kByte).device(cuda));
  }
  EXPECT_GE(reserved() - before, 64 << 20) << "freed, but cached";
  la::runtime::release_cached_device_memory(cuda);
  EXPECT_EQ(reserved(), before);
}

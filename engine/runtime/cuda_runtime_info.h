// What the CUDA runtime and NCCL this build links against report. Works on
// machines without a GPU (device_count 0, `error` says why), so callers can
// choose CPU fallbacks and print an actionable reason.
#pragma once

#include <c10/core/Device.h>
#include <cstdint>
#include <string>

namespace la::runtime {

struct CudaRuntimeInfo {
  int device_count = 0;
  int runtime_version = 0;  // e.g. 13000
  int driver_version = 0;   // 0 when no driver is installed
  int nccl_version = 0;     // e.g. 22809
  std::string error;        // empty when devices were enumerated
};

CudaRuntimeInfo query_cuda_runtime();

struct ComputeCapability {
  int major = 0, minor = 0;  // 0.0 when the device cannot be asked
};
// The compute capability of CUDA device `index` (cudaDevAttrComputeCapability*).
ComputeCapability compute_capability(int index);

// Total memory of CUDA device `index` (cudaDeviceProp::totalGlobalMem), or 0
// when it cannot be asked. For the memory planner.
int64_t device_total_memory(int index);

// Hands LibTorch's cached but unused device memory (the caching allocator's
// free blocks) back to the driver, so other processes and the memory planner
// see it free: CUDACachingAllocator::emptyCache(). It waits for the device's
// work, so call it at a boundary (a released model), never per block. No-op
// on the CPU.
void release_cached_device_memory(c10::Device device);

}  // namespace la::runtime

// What the CUDA runtime and NCCL this build links against report. Works on
// machines without a GPU (device_count 0, `error` says why), so callers can
// choose CPU fallbacks and print an actionable reason.
#pragma once

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

}  // namespace la::runtime

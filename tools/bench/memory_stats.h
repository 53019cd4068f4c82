// Process and device memory figures for the benchmarks.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>

namespace la::tools {

struct MemoryStats {
  int64_t rss_bytes = 0;        // resident set now
  int64_t peak_rss_bytes = 0;   // VmHWM since start
  int64_t device_bytes = 0;     // CUDA caching allocator: allocated now (0 on CPU)
  int64_t device_peak_bytes = 0;
};

MemoryStats memory_stats(at::Device device);

// Starts a new device peak (CUDA; nothing on the CPU): the peak of one phase (loading, the sink
// prefill, the blocks) then reads apart from the others.
void reset_device_peak(at::Device device);

}  // namespace la::tools

// Memory figures for progress messages: the process's resident set and, on
// CUDA, what LibTorch's caching allocator has allocated on the device.
#pragma once

#include <c10/core/Device.h>
#include <cstdint>

namespace la::gst {

struct MemoryUsage {
  uint64_t rss_bytes = 0;
  uint64_t device_bytes = 0;  // 0 on the CPU
};

MemoryUsage memory_usage(c10::Device device);

}  // namespace la::gst

#include "gst/memory_usage.h"

#include <c10/cuda/CUDACachingAllocator.h>
#include <cstdio>
#include <unistd.h>

namespace la::gst {

MemoryUsage memory_usage(c10::Device device) {
  MemoryUsage m;
  // /proc/self/statm: size resident ... in pages; one short read per block.
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size = 0, resident = 0;
    if (std::fscanf(f, "%llu %llu", &size, &resident) == 2)
      m.rss_bytes = resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    std::fclose(f);
  }
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    const auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    m.device_bytes = static_cast<uint64_t>(stats.allocated_bytes[aggregate].current);
  }
  return m;
}

}  // namespace la::gst

#include "tools/bench/memory_stats.h"

#include <c10/cuda/CUDACachingAllocator.h>
#include <fstream>
#include <string>

namespace la::tools {
namespace {

int64_t status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  return 0;
}

}  // namespace

MemoryStats memory_stats(at::Device device) {
  MemoryStats s;
  s.rss_bytes = status_kb("VmRSS") * 1024;
  s.peak_rss_bytes = status_kb("VmHWM") * 1024;
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    const auto& all = stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)];
    s.device_bytes = all.current;
    s.device_peak_bytes = all.peak;
  }
  return s;
}

void reset_device_peak(at::Device device) {
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
}

}  // namespace la::tools

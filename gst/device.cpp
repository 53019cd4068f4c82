#include "gst/device.h"

#include <stdexcept>
#include <string>

#include "engine/runtime/cuda_runtime_info.h"

namespace la::gst {

c10::Device resolve_device(int cuda_device_id) {
  if (cuda_device_id < 0) return c10::Device(c10::kCPU);
  const runtime::CudaRuntimeInfo info = runtime::query_cuda_runtime();
  if (cuda_device_id >= info.device_count) {
    std::string why = info.device_count == 0
                          ? "no CUDA device is available" + (info.error.empty() ? "" : " (" + info.error + ")")
                          : "the CUDA runtime reports " + std::to_string(info.device_count) + " device(s)";
    throw std::runtime_error("cuda-device-id=" + std::to_string(cuda_device_id) + " but " + why +
                             "; use cuda-device-id=-1 to run on the CPU");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(cuda_device_id));
}

at::ScalarType model_dtype(c10::Device device) { return device.is_cuda() ? at::kBFloat16 : at::kFloat; }

}  // namespace la::gst

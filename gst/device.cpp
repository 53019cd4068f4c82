#include "gst/device.h"

#include <stdexcept>
#include <string>

#include "engine/runtime/cuda_runtime_info.h"

namespace la::gst {

std::string why_no_cuda_device(int id) {
  const runtime::CudaRuntimeInfo info = runtime::query_cuda_runtime();
  if (id < info.device_count) return "";
  return info.device_count == 0 ? "no CUDA device is available" + (info.error.empty() ? "" : " (" + info.error + ")")
                                : "the CUDA runtime reports " + std::to_string(info.device_count) + " device(s)";
}

c10::Device resolve_device(int cuda_device_id) {
  if (cuda_device_id < 0) return c10::Device(c10::kCPU);
  const std::string why = why_no_cuda_device(cuda_device_id);
  if (!why.empty())
    throw std::runtime_error("cuda-device-id=" + std::to_string(cuda_device_id) + " but " + why +
                             "; use cuda-device-id=-1 to run on the CPU");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(cuda_device_id));
}

at::ScalarType model_dtype(c10::Device device) { return device.is_cuda() ? at::kBFloat16 : at::kFloat; }

}  // namespace la::gst

// The cuda-device-id property of every element: -1 is the CPU (fp32), N >= 0
// the N-th CUDA device (bf16 weights, DESIGN §3). Checked against what the
// CUDA runtime reports, so a missing GPU is an actionable error, not a crash
// in the first kernel.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace la::gst {

// -1 -> CPU. Throws std::runtime_error naming the id, the number of devices
// and the runtime's reason when the device does not exist.
c10::Device resolve_device(int cuda_device_id);

// Empty when CUDA device `id` (>= 0) exists here; else why not: "no CUDA device is available
// (<the runtime's reason>)" or "the CUDA runtime reports N device(s)".
std::string why_no_cuda_device(int id);

// The model dtype the pipeline runs on a device: fp32 on the CPU, bf16 on CUDA.
at::ScalarType model_dtype(c10::Device device);

}  // namespace la::gst

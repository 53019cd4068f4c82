#include "gst/stage_device.h"

#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

#include <atomic>
#include <exception>

#include "gst/cxx_unwinder.h"
#include "gst/device.h"

GST_DEBUG_CATEGORY_STATIC(la_stage_device_debug);
#define GST_CAT_DEFAULT la_stage_device_debug

namespace la::gst {

namespace {

// gst/cxx_unwinder.h: the first element of the process that opens a GPU says so when C++
// exceptions are not unwound by libgcc_s (the CPU path is unaffected, see there).
void warn_about_the_unwinder_once(GstElement* element) {
  static std::atomic<bool> warned{false};
  if (warned.load()) return;  // no lookups for the other elements
  const std::optional<std::string> hazard = cxx_unwinder_hazard(cxx_unwinder_library());
  if (!hazard || warned.exchange(true)) return;
  GST_ELEMENT_WARNING(element, CORE, FAILED, ("%s", hazard->c_str()), (nullptr));
}

}  // namespace

bool StageDevice::open(GstElement* element, int cuda_device_id) {
  static const bool debug_once = [] {
    GST_DEBUG_CATEGORY_INIT(la_stage_device_debug, "lastage", 0, "LiveAvatar element device and CUDA stream");
    return true;
  }();
  (void)debug_once;
  close();
  try {
    device_ = resolve_device(cuda_device_id);
    if (device_.is_cuda()) {
      // Round-robin over LibTorch's pool (32 streams per device): the three
      // elements of a pipeline get three different streams.
      stream_ = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device_.index());
    }
  } catch (const std::exception& e) {
    close();
    GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS, ("%s", e.what()), (nullptr));
    return false;
  }
  if (stream_) {
    GST_INFO_OBJECT(element, "on %s, CUDA stream %p", device_.str().c_str(),
                    static_cast<void*>(c10::cuda::CUDAStream(c10::cuda::CUDAStream::UNCHECKED, *stream_).stream()));
    warn_about_the_unwinder_once(element);
  }
  return true;
}

void wait_for_loading(const c10::Device& device) {
  if (!device.is_cuda()) return;
  const c10::cuda::CUDAGuard guard(device);
  c10::cuda::device_synchronize();
}

void StageDevice::loaded() const { wait_for_loading(device_); }

void StageDevice::synchronize() const {
  if (stream_) stream_->synchronize();
}

void StageDevice::close() {
  device_ = c10::Device(c10::kCPU);
  stream_.reset();
}

at::ScalarType StageDevice::dtype() const { return model_dtype(device_); }

StageScope::StageScope(const StageDevice& stage) : guard_(stage.stream()) {}

}  // namespace la::gst

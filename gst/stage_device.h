// The device chores of laaudiofeat, liveavatargen and lavaedecode (DESIGN
// §4, §5): resolving cuda-device-id at NULL->READY, the stage's own CUDA
// stream, making that stream current on every thread that runs the stage's
// work, and waiting once for the loading of models before the stage's stream
// uses them. Their base class (gst/stage_element.h) holds one and calls
// loaded() and close() at the right state changes; the element opens it:
//
//   // load_models() (NULL->READY):
//   if (!stage.open(GST_ELEMENT(self), cuda_device_id)) return false;
//   ... load models on stage.device() in stage.dtype() ...
//   // (the base: stage.loaded() after a successful load, stage.close() at READY->NULL)
//   // chain(), event handlers, a clock thread: before any tensor work
//   const la::gst::StageScope on_stage(stage);
//
// Streams (docs/architecture.md, "Streams and events"): each element is one
// stage of the pipeline and runs its kernels on its own stream from
// LibTorch's pool (c10::cuda::getStreamFromPool; non-blocking, so it never
// waits for the legacy default stream or another stage). A tensor handed to
// the next element in memory:LiveAvatarTensor carries an event recorded on
// this stream (gst/tensor_memory.h), which the consumer's stream waits for.
// Host synchronisation is then per stage: a blocking device->host copy or
// CudaFramePool::synchronize() waits for this stage's work only.
//
// open()/close() run in state changes; device(), dtype() and stream() may be
// read from any thread between them (set once at open()).
#pragma once

#include <gst/gst.h>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/core/Stream.h>
#include <c10/cuda/CUDAGuard.h>

#include <optional>

namespace la::gst {

// Waits for the work queued so far on `device` (CUDA; nothing on the CPU). Loading runs on the
// loading thread's current stream, normally the legacy default one (weight copies, dtype
// conversions, the LoRA merge, fp8 quantisation), which the pool's non-blocking streams do not
// wait for: every device a stage's models were loaded onto needs this once.
void wait_for_loading(const c10::Device& device);

class StageDevice {
 public:
  // Resolves `cuda_device_id` (gst/device.h: -1 is the CPU) and, on CUDA,
  // takes the stage's stream from LibTorch's pool. On failure posts
  // GST_ELEMENT_ERROR (RESOURCE, SETTINGS) naming the id and what the runtime
  // reports, and returns false.
  bool open(GstElement* element, int cuda_device_id);
  // After the stage's models were loaded: wait_for_loading(device()), so the weights are
  // complete before the stage's stream reads them. No-op on the CPU.
  void loaded() const;
  // Waits (on the host) for the work queued on the stage's stream, and on no other: before a
  // block's processing time is read. Without it a GPU stage would time only the enqueueing of
  // its kernels (the host runs ahead of the device), and the latency it answers and the late
  // blocks it skips would be computed from that. No-op on the CPU.
  void synchronize() const;
  // Back to the CPU, no stream.
  void close();

  c10::Device device() const { return device_; }
  at::ScalarType dtype() const;  // the model dtype on this device (gst/device.h)
  bool is_cuda() const { return device_.is_cuda(); }
  // The stage's CUDA stream; nullopt on the CPU.
  std::optional<c10::Stream> stream() const { return stream_; }

 private:
  c10::Device device_{c10::kCPU};
  std::optional<c10::Stream> stream_;
};

// While it lives, the calling thread runs on the stage's device with the
// stage's stream current (LibTorch's current stream is per thread, so every
// thread that does the stage's tensor work makes one). Nothing on the CPU.
class StageScope {
 public:
  explicit StageScope(const StageDevice& stage);
  StageScope(const StageScope&) = delete;
  StageScope& operator=(const StageScope&) = delete;

 private:
  c10::cuda::OptionalCUDAStreamGuard guard_;
};

}  // namespace la::gst

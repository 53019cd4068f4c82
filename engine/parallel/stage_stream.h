// A pipeline stage's place on its device: on a device with streams (CUDA)
// each stage thread issues its work on a stream of its own, and a tensor
// handed to another stage is made safe there with an event (the consumer's
// stream waits for the producer's work, without synchronising the device)
// and by telling the caching allocator the consumer's stream uses its memory.
// On the CPU all of this is nothing: work is done when the call returns.
// Backend-neutral (c10's virtual guard), so the engine needs no CUDA headers.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/Event.h>
#include <c10/core/Stream.h>
#include <c10/core/StreamGuard.h>
#include <memory>
#include <optional>
#include <vector>

namespace la::parallel {

// An event after the work queued so far on this thread's current stream of `device` (null on
// the CPU): what another stream waits for before it reads tensors made on that stream.
std::shared_ptr<c10::Event> record_on_current_stream(at::Device device);

// Tells the caching allocator that this thread's current stream of `t`'s device uses `t` (nothing
// on the CPU), so that the stream which allocated it cannot reuse the memory before that work.
void used_by_current_stream(const at::Tensor& t);

class StageStream {
 public:
  explicit StageStream(at::Device device);
  // On the stage's thread, before any work: makes its device and stream current
  // for as long as the returned guard lives.
  struct Guard {
    std::optional<c10::DeviceGuard> device;
    std::optional<c10::StreamGuard> stream;
  };
  std::unique_ptr<Guard> enter() const;
  // After producing `handed` on this stage: an event its consumer waits on
  // (null on the CPU).
  std::shared_ptr<c10::Event> record() const;
  // Before using `handed` (made by another stage) on this stage, or copying it here: this
  // stage's stream waits for `ready`, and the caching allocator learns which streams use each
  // tensor, so that its producer's stream cannot reuse the memory before they are done. A tensor
  // on this stage's device is used by this stage's stream. A tensor on another GPU is read by
  // the copy that brings it here, which runs on that GPU's current stream of this thread
  // (PyTorch's copy_ between devices, aten/src/ATen/native/cuda/Copy.cu: "on the source device,
  // using the current stream on the source device", ordered after this stage's stream by a
  // two-way barrier): that stream is recorded for it.
  void wait(const std::shared_ptr<c10::Event>& ready, const std::vector<at::Tensor>& handed) const;
  at::Device device() const { return device_; }

 private:
  at::Device device_;
  std::optional<c10::Stream> stream_;  // none on the CPU
};

}  // namespace la::parallel

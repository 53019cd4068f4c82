#include "engine/parallel/stage_stream.h"

#include <c10/core/impl/VirtualGuardImpl.h>

namespace la::parallel {

StageStream::StageStream(at::Device device) : device_(device) {
  if (device.is_cpu()) return;
  const c10::impl::VirtualGuardImpl impl(device.type());
  stream_ = impl.getStreamFromGlobalPool(device, /*isHighPriority=*/false);
}

std::unique_ptr<StageStream::Guard> StageStream::enter() const {
  auto g = std::make_unique<Guard>();
  if (!stream_) return g;
  g->device.emplace(device_);
  g->stream.emplace(*stream_);
  return g;
}

std::shared_ptr<c10::Event> StageStream::record() const {
  if (!stream_) return nullptr;
  auto event = std::make_shared<c10::Event>(device_.type());
  event->record(*stream_);
  return event;
}

void StageStream::wait(const std::shared_ptr<c10::Event>& ready, const std::vector<at::Tensor>& handed) const {
  if (!stream_) return;
  if (ready) ready->block(*stream_);
  // The producer's stream allocated these; the allocator must not hand their
  // memory out again before this stream's work on them, or the copy, is done.
  const c10::impl::VirtualGuardImpl impl(device_.type());
  for (const at::Tensor& t : handed) {
    if (!t.defined() || !t.has_storage() || t.device().type() != device_.type()) continue;
    const c10::Stream user = t.device() == device_ ? *stream_ : impl.getStream(t.device());
    impl.recordDataPtrOnStream(t.storage().data_ptr(), user);
  }
}

}  // namespace la::parallel

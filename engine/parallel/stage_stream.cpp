#include "engine/parallel/stage_stream.h"

#include <c10/core/impl/VirtualGuardImpl.h>

namespace la::parallel {

std::shared_ptr<c10::Event> record_on_current_stream(at::Device device) {
  if (device.is_cpu()) return nullptr;
  const c10::impl::VirtualGuardImpl impl(device.type());
  auto event = std::make_shared<c10::Event>(device.type());
  event->record(impl.getStream(device));
  return event;
}

void used_by_current_stream(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage() || t.device().is_cpu()) return;
  const c10::impl::VirtualGuardImpl impl(t.device().type());
  impl.recordDataPtrOnStream(t.storage().data_ptr(), impl.getStream(t.device()));
}

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
    if (t.device() == device_) impl.recordDataPtrOnStream(t.storage().data_ptr(), *stream_);
    else used_by_current_stream(t);  // by the copy to this device
  }
}

}  // namespace la::parallel

#include "gst/tensor_memory.h"

#include <ATen/ATen.h>
#include <c10/core/Event.h>
#include <c10/cuda/CUDAStream.h>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace la::gst {
namespace {

constexpr const char* kMemType = "LaTensorMemory";

struct TensorMemory {
  GstMemory mem;
  at::Tensor* tensor;  // owned; every memory (shared ones too) holds its own reference
  // CUDA tensors: recorded on the producer's current stream when the tensor
  // was wrapped, i.e. after the kernels that wrote it; shared by sub-memories.
  std::shared_ptr<c10::Event>* ready;  // owned; null for CPU tensors
};

// The current stream, on the consuming thread, of the tensor's device: the
// stage's own when the consumer runs in its StageScope (gst/stage_device.h).
c10::Stream consumer_stream(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()); }

// An event recorded now on the current stream of the tensor's device.
std::shared_ptr<c10::Event> record_ready(const at::Tensor& t) {
  if (!t.is_cuda()) return nullptr;
  auto event = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
  event->record(consumer_stream(t));
  return event;
}

// Before the consumer's stream uses the tensor: it waits (on the device, the
// host goes on) for the producer's event, and the caching allocator learns
// that this stream uses the storage, so a block freed by the consumer's last
// reference is not reused by the producer's stream before the consumer's
// kernels ran (Tensor::record_stream).
void wait_ready(const at::Tensor& t, const std::shared_ptr<c10::Event>& ready) {
  if (!t.is_cuda()) return;
  const c10::Stream stream = consumer_stream(t);
  if (ready) ready->block(stream);
  t.record_stream(stream);
}

}  // namespace
}  // namespace la::gst

// --- The allocator: a GstAllocator subclass that cannot allocate by size ----
// (GST_ALLOCATOR_FLAG_CUSTOM_ALLOC); memories come only from tensor_memory_new.
struct LaTensorAllocator {
  GstAllocator parent;
  gint live;  // memories alive now (atomic)
};
struct LaTensorAllocatorClass {
  GstAllocatorClass parent_class;
};
G_DEFINE_TYPE(LaTensorAllocator, la_tensor_allocator, GST_TYPE_ALLOCATOR)

namespace la::gst {
namespace {

TensorMemory* as_tensor_memory(GstMemory* mem) { return reinterpret_cast<TensorMemory*>(mem); }

GstMemory* wrap(GstAllocator* allocator, at::Tensor tensor, std::shared_ptr<c10::Event> ready, GstMemory* parent,
                gsize offset, gsize size, GstMemoryFlags flags) {
  g_atomic_int_inc(&reinterpret_cast<LaTensorAllocator*>(allocator)->live);
  auto* m = new TensorMemory;
  m->tensor = new at::Tensor(std::move(tensor));
  m->ready = ready ? new std::shared_ptr<c10::Event>(std::move(ready)) : nullptr;
  const gsize maxsize = m->tensor->nbytes();
  gst_memory_init(GST_MEMORY_CAST(m), flags, allocator, parent, maxsize, 0, offset, size);
  return GST_MEMORY_CAST(m);
}

GstMemoryFlags flags_for(const at::Tensor& t) {
  return t.is_cpu() ? GstMemoryFlags(0) : GST_MEMORY_FLAG_NOT_MAPPABLE;
}

gpointer mem_map(GstMemory* mem, gsize, GstMapFlags) {
  const at::Tensor& t = *as_tensor_memory(mem)->tensor;
  return t.is_cpu() ? t.data_ptr() : nullptr;  // device memory is never handed to the CPU
}

void mem_unmap(GstMemory*) {}

// A sub-memory shares the tensor (its own reference) and keeps the parent alive.
GstMemory* mem_share(GstMemory* mem, gssize offset, gssize size) {
  GstMemory* parent = mem->parent ? mem->parent : mem;
  if (size == -1) size = static_cast<gssize>(mem->size) - offset;
  const auto flags = GstMemoryFlags(GST_MINI_OBJECT_FLAGS(parent) | GST_MINI_OBJECT_FLAG_LOCK_READONLY);
  TensorMemory* m = as_tensor_memory(mem);
  return wrap(mem->allocator, *m->tensor, m->ready ? *m->ready : nullptr, parent, mem->offset + offset, size, flags);
}

// A copy stays on the tensor's device: the bytes are cloned as a uint8 tensor.
GstMemory* mem_copy(GstMemory* mem, gssize offset, gssize size) {
  TensorMemory* m = as_tensor_memory(mem);
  const at::Tensor& t = *m->tensor;
  if (size == -1) size = mem->size > static_cast<gsize>(offset) ? static_cast<gssize>(mem->size) - offset : 0;
  const int64_t start = static_cast<int64_t>(mem->offset) + offset;
  wait_ready(t, m->ready ? *m->ready : nullptr);  // the clone runs on the copying thread's stream
  at::Tensor bytes = t.reshape({-1}).view(at::kByte).slice(0, start, start + size).clone();
  return wrap(mem->allocator, bytes, record_ready(bytes), nullptr, 0, bytes.nbytes(), flags_for(bytes));
}

}  // namespace
}  // namespace la::gst

static GstMemory* la_tensor_allocator_alloc(GstAllocator*, gsize, GstAllocationParams*) {
  g_warning("LaTensorMemory cannot allocate by size: wrap a tensor with la::gst::tensor_memory_new");
  return nullptr;
}

static void la_tensor_allocator_free(GstAllocator* allocator, GstMemory* mem) {
  g_atomic_int_add(&reinterpret_cast<LaTensorAllocator*>(allocator)->live, -1);
  auto* m = la::gst::as_tensor_memory(mem);
  delete m->tensor;
  delete m->ready;
  delete m;
}

static void la_tensor_allocator_class_init(LaTensorAllocatorClass* klass) {
  GstAllocatorClass* alloc_class = GST_ALLOCATOR_CLASS(klass);
  alloc_class->alloc = la_tensor_allocator_alloc;
  alloc_class->free = la_tensor_allocator_free;
}

static void la_tensor_allocator_init(LaTensorAllocator* self) {
  GstAllocator* alloc = GST_ALLOCATOR_CAST(self);
  alloc->mem_type = la::gst::kMemType;
  alloc->mem_map = la::gst::mem_map;
  alloc->mem_unmap = la::gst::mem_unmap;
  alloc->mem_share = la::gst::mem_share;
  alloc->mem_copy = la::gst::mem_copy;
  GST_OBJECT_FLAG_SET(self, GST_ALLOCATOR_FLAG_CUSTOM_ALLOC);
}

namespace la::gst {
namespace {

GstAllocator* allocator() {
  static GstAllocator* instance = [] {
    // Another copy of this code in the process (a test program linking the
    // glue next to the loaded plugin, say) may have made the allocator
    // first: share it, the memory layout is the same.
    if (GstAllocator* found = gst_allocator_find(kMemType)) return found;
    GType type = g_type_from_name("LaTensorAllocator");
    if (type == 0) type = la_tensor_allocator_get_type();
    auto* a = GST_ALLOCATOR_CAST(g_object_new(type, nullptr));
    gst_object_ref_sink(a);
    // Process-lifetime singleton: not a leak for the leaks tracer.
    GST_OBJECT_FLAG_SET(a, GST_OBJECT_FLAG_MAY_BE_LEAKED);
    gst_allocator_register(kMemType, GST_ALLOCATOR_CAST(gst_object_ref(a)));
    return a;
  }();
  return instance;
}

// Keeps a buffer mapped for as long as a tensor views the mapping.
struct MappedBuffer {
  GstBuffer* buffer;
  GstMapInfo info;
  ~MappedBuffer() {
    gst_buffer_unmap(buffer, &info);
    gst_buffer_unref(buffer);
  }
};

std::string shape_text(c10::IntArrayRef sizes, at::ScalarType dtype) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? "," : "") + std::to_string(sizes[i]);
  return s + "] " + c10::toString(dtype);
}

}  // namespace

GstMemory* tensor_memory_new(const at::Tensor& tensor) {
  at::Tensor t = tensor.contiguous();
  const gsize n = t.nbytes();
  std::shared_ptr<c10::Event> ready = record_ready(t);  // after contiguous()'s copy, if it made one
  return wrap(allocator(), std::move(t), std::move(ready), nullptr, 0, n, flags_for(tensor));
}

GstBuffer* buffer_new_from_tensor(const at::Tensor& tensor) {
  GstBuffer* buffer = gst_buffer_new();
  gst_buffer_append_memory(buffer, tensor_memory_new(tensor));
  GST_BUFFER_FLAG_UNSET(buffer, GST_BUFFER_FLAG_TAG_MEMORY);  // a fresh buffer, not one from a pool
  return buffer;
}

int64_t live_tensor_memories() { return g_atomic_int_get(&reinterpret_cast<LaTensorAllocator*>(allocator())->live); }

bool is_tensor_memory(GstMemory* mem) { return mem && gst_memory_is_type(mem, kMemType); }

const at::Tensor* tensor_memory_peek(GstMemory* mem) {
  return is_tensor_memory(mem) ? as_tensor_memory(mem)->tensor : nullptr;
}

const c10::Event* tensor_memory_ready_event(GstMemory* mem) {
  return is_tensor_memory(mem) && as_tensor_memory(mem)->ready ? as_tensor_memory(mem)->ready->get() : nullptr;
}

at::Tensor buffer_to_tensor(GstBuffer* buffer, c10::IntArrayRef sizes, at::ScalarType dtype) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const gsize want = static_cast<gsize>(numel) * c10::elementSize(dtype);
  const gsize have = gst_buffer_get_size(buffer);
  if (have != want)
    throw std::invalid_argument("buffer holds " + std::to_string(have) + " bytes, the caps' block " +
                                shape_text(sizes, dtype) + " needs " + std::to_string(want));

  if (gst_buffer_n_memory(buffer) == 1) {
    GstMemory* mem = gst_buffer_peek_memory(buffer, 0);
    if (const at::Tensor* t = tensor_memory_peek(mem)) {
      TensorMemory* m = as_tensor_memory(mem);
      wait_ready(*t, m->ready ? *m->ready : nullptr);
      const size_t item = c10::elementSize(dtype);
      const size_t byte_offset = static_cast<size_t>(t->storage_offset()) * t->element_size() + mem->offset;
      if (byte_offset % item == 0) {
        // A view on the tensor's own storage, not from_blob: the CUDA caching allocator ignores
        // record_stream on memory whose deleter is not its own, so a consumer that hands the view
        // on to another stream (the DiT pipeline's stages) could not protect it otherwise.
        std::vector<int64_t> strides(sizes.size(), 1);
        for (size_t i = sizes.size(); i-- > 1;) strides[i - 1] = strides[i] * sizes[i];
        at::Tensor view = at::empty({0}, t->options().dtype(dtype));
        view.set_(t->storage(), static_cast<int64_t>(byte_offset / item), sizes, strides);
        return view;
      }
      auto* data = static_cast<uint8_t*>(t->data_ptr()) + mem->offset;
      at::Tensor keep = *t;  // the view's deleter holds the storage
      return at::from_blob(data, sizes, [keep](void*) mutable { keep.reset(); },
                           at::TensorOptions().dtype(dtype).device(t->device()));
    }
  }

  GstMapInfo info;
  if (!gst_buffer_map(buffer, &info, GST_MAP_READ))
    throw std::runtime_error("cannot map the buffer for reading (device memory without a tensor?)");
  auto* mapped = new MappedBuffer{gst_buffer_ref(buffer), info};
  if (reinterpret_cast<uintptr_t>(mapped->info.data) % c10::elementSize(dtype) != 0) {
    at::Tensor copy = at::empty(sizes, at::TensorOptions().dtype(dtype));
    std::memcpy(copy.data_ptr(), mapped->info.data, want);
    delete mapped;
    return copy;
  }
  return at::from_blob(mapped->info.data, sizes, [mapped](void*) { delete mapped; },
                       at::TensorOptions().dtype(dtype));
}

}  // namespace la::gst

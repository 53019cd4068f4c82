// Tensors in GstBuffers, without copies.
//
// tensor -> buffer: a GstMemory of our allocator ("LaTensorMemory") owns a
// heap-allocated at::Tensor, i.e. a reference to the tensor's storage; the
// storage lives as long as any buffer or sub-buffer holds the memory. CPU
// tensors map to their data pointer. CUDA tensors are carried the same way but
// the memory is flagged GST_MEMORY_FLAG_NOT_MAPPABLE and its map refuses: a
// CPU element must never read a device pointer. Such buffers are only for
// caps that say so (a memory:... feature between our own elements); the
// consumer takes the tensor with buffer_to_tensor(), which never maps a
// tensor memory.
//
// Streams (CUDA tensors): wrapping records an event on the current stream of
// the tensor's device (the producing stage's, gst/stage_device.h), after the
// kernels that wrote it. buffer_to_tensor() (and a deep copy) make the
// current stream of the consuming thread wait for that event on the device
// (no host synchronisation) and record that stream's use of the storage with
// the caching allocator, so the producer cannot reuse the block before the
// consumer's kernels ran. Producer and consumer need nothing else.
//
// buffer -> tensor: a buffer of one tensor memory gives a view of that tensor
// (any device, zero-copy). Any other buffer is mapped for reading and the
// tensor is a view of the mapping; the mapping and a buffer reference live
// until the last tensor sharing that storage is freed (zero-copy too). Data
// that is misaligned for the dtype is copied once instead.
#pragma once

#include <gst/gst.h>

#include <ATen/core/Tensor.h>
#include <c10/core/Event.h>
#include <c10/util/ArrayRef.h>

namespace la::gst {

// Wraps `tensor` (made contiguous first if it is not) in one memory / buffer.
// The memory is writable: the caller hands the tensor over and must not write
// to it afterwards. Call it on the thread (and stream) that wrote the tensor.
GstMemory* tensor_memory_new(const at::Tensor& tensor);
GstBuffer* buffer_new_from_tensor(const at::Tensor& tensor);

bool is_tensor_memory(GstMemory* mem);
// Tensor memories alive in the process now (one allocator is shared by every
// copy of this code, the plugin's and a test program's): for leak tests.
int64_t live_tensor_memories();
// The whole tensor a tensor memory holds (ignores the memory's offset/size);
// nullptr for other memories.
const at::Tensor* tensor_memory_peek(GstMemory* mem);
// The event a CUDA tensor memory carries (see above); nullptr for CPU tensors
// and other memories.
const c10::Event* tensor_memory_ready_event(GstMemory* mem);

// A tensor of `sizes` and `dtype` over the buffer's bytes, as described above.
// Throws std::invalid_argument when the buffer's size is not the shape's
// byte count (the message gives both), std::runtime_error when it cannot be
// mapped.
at::Tensor buffer_to_tensor(GstBuffer* buffer, c10::IntArrayRef sizes, at::ScalarType dtype);

}  // namespace la::gst

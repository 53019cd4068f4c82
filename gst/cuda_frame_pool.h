// lavaedecode's memory:CUDAMemory output: frames written by LibTorch straight
// into GstCudaMemory from a GstCudaBufferPool (DESIGN §4), no host copy.
//
// The pool is downstream's when the ALLOCATION query offers a
// GstCudaBufferPool in our context (the wrapped primary context, so the
// memory is LibTorch's too), else our own in that context. GStreamer 1.22's
// CUDA memory has no per-memory stream, so the frames of a block are written
// on LibTorch's current stream, which is synchronised before they are pushed.
#pragma once

#include <gst/cuda/gstcudacontext.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "engine/video/pixel_convert.h"

namespace la::gst {

class CudaFramePool {
 public:
  // After the memory:CUDAMemory `caps` went downstream on `srcpad`. Throws
  // std::runtime_error when no pool can be configured and activated.
  CudaFramePool(GstPad* srcpad, GstCaps* caps, GstCudaContext* context, c10::Device device);
  ~CudaFramePool();  // deactivates the pool; buffers downstream return to it and are freed
  CudaFramePool(const CudaFramePool&) = delete;
  CudaFramePool& operator=(const CudaFramePool&) = delete;

  // One packed frame (uint8 [frame_bytes] on the device) in a pool buffer.
  // The copy is queued: call synchronize() before pushing.
  GstBuffer* write(const at::Tensor& packed);
  // Waits for every write so far.
  void synchronize();
  // Whether the pool is downstream's (true) or our own (false).
  bool downstream_pool() const { return downstream_pool_; }

 private:
  GstBufferPool* pool_ = nullptr;
  GstVideoInfo info_;
  video::PixelFormat format_;
  c10::Device device_;
  bool downstream_pool_ = false;
};

}  // namespace la::gst

// lavaedecode's memory:CUDAMemory output: frames written by LibTorch straight
// into GstCudaMemory from a GstCudaBufferPool (DESIGN §4), no host copy.
//
// The pool is downstream's when the ALLOCATION query offers a
// GstCudaBufferPool in our context (the wrapped primary context, so the
// memory is LibTorch's too) and it takes our configuration, else our own in
// that context (downstream's refuses while buffers of an earlier
// negotiation are still out). GStreamer 1.22's
// CUDA memory has no per-memory stream, so the frames of a block are written
// on LibTorch's current stream (the decoder stage's own, gst/stage_device.h),
// which is synchronised before they are pushed.
#pragma once

#include <gst/cuda/gstcudacontext.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <functional>

#include "engine/video/pixel_convert.h"

namespace la::gst {

// Sets caps, size, min/max and the video-meta option on `pool` (taking the
// pool's own amended config once when it changes ours) and activates it.
// False when the pool refuses: gst_buffer_pool_set_config fails while the pool
// is active or any of its buffers is outstanding.
bool configure_and_activate(GstBufferPool* pool, GstCaps* caps, guint size, guint min, guint max);

// `preferred` (transfer full, may be null) when it takes the configuration,
// else make_own()'s pool, configured and active; null when neither works.
// *used_preferred says which.
GstBufferPool* activate_pool_or_own(GstBufferPool* preferred, const std::function<GstBufferPool*()>& make_own,
                                    GstCaps* caps, guint size, guint min, guint max, bool* used_preferred);

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

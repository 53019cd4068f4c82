#include "gst/cuda_frame_pool.h"

#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudamemory.h>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "gst/video_frame_copy.h"

namespace la::gst {
namespace {

// A block is pushed as one list of 12 frames: the pool keeps at least one
// block and one in flight downstream before it has to allocate more.
constexpr guint kMinBuffers = 24;

bool same_context(GstCudaContext* a, GstCudaContext* b) {
  return a && b && gst_cuda_context_get_handle(a) == gst_cuda_context_get_handle(b);
}

// Downstream's GstCudaBufferPool when it is in our context, else nullptr.
GstBufferPool* downstream_cuda_pool(GstPad* srcpad, GstCaps* caps, GstCudaContext* context, guint* min, guint* max) {
  GstQuery* query = gst_query_new_allocation(caps, TRUE);
  GstBufferPool* pool = nullptr;
  if (gst_pad_peer_query(srcpad, query) && gst_query_get_n_allocation_pools(query) > 0) {
    guint size = 0;
    gst_query_parse_nth_allocation_pool(query, 0, &pool, &size, min, max);
    if (pool && !(GST_IS_CUDA_BUFFER_POOL(pool) && same_context(GST_CUDA_BUFFER_POOL(pool)->context, context))) {
      gst_object_unref(pool);
      pool = nullptr;
    }
  }
  gst_query_unref(query);
  return pool;
}

}  // namespace

CudaFramePool::CudaFramePool(GstPad* srcpad, GstCaps* caps, GstCudaContext* context, c10::Device device)
    : device_(device) {
  if (!gst_video_info_from_caps(&info_, caps)) throw std::runtime_error("cannot read the CUDAMemory video caps");
  format_ = video::pixel_format_from_name(gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info_)));
  guint min = 0, max = 0;
  pool_ = downstream_cuda_pool(srcpad, caps, context, &min, &max);
  downstream_pool_ = pool_ != nullptr;
  if (!pool_) pool_ = gst_cuda_buffer_pool_new(context);
  min = std::max(min, kMinBuffers);
  if (max != 0 && max < min) max = min;

  GstStructure* config = gst_buffer_pool_get_config(pool_);
  gst_buffer_pool_config_set_params(config, caps, static_cast<guint>(GST_VIDEO_INFO_SIZE(&info_)), min, max);
  gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  bool ok = gst_buffer_pool_set_config(pool_, config);
  if (!ok) {
    // The pool changed the config (its own padded size, say): take its version.
    config = gst_buffer_pool_get_config(pool_);
    ok = gst_buffer_pool_set_config(pool_, config);
  }
  if (!ok || !gst_buffer_pool_set_active(pool_, TRUE)) {
    gst_object_unref(pool_);
    pool_ = nullptr;
    throw std::runtime_error(std::string("cannot configure and activate the ") +
                             (downstream_pool_ ? "downstream" : "own") + " GstCudaBufferPool");
  }
}

CudaFramePool::~CudaFramePool() {
  if (!pool_) return;
  gst_buffer_pool_set_active(pool_, FALSE);
  gst_object_unref(pool_);
}

GstBuffer* CudaFramePool::write(const at::Tensor& packed) {
  GstBuffer* buffer = nullptr;
  if (gst_buffer_pool_acquire_buffer(pool_, &buffer, nullptr) != GST_FLOW_OK || !buffer)
    throw std::runtime_error("the GstCudaBufferPool gave no buffer");
  GstVideoFrame frame;
  if (!gst_video_frame_map(&frame, &info_, buffer, static_cast<GstMapFlags>(GST_MAP_WRITE | GST_MAP_CUDA))) {
    gst_buffer_unref(buffer);
    throw std::runtime_error("cannot map a GstCudaMemory frame for writing on the device");
  }
  try {
    const c10::cuda::CUDAGuard guard(device_);
    copy_packed_frame(packed.to(device_), format_, &frame);
  } catch (...) {
    gst_video_frame_unmap(&frame);
    gst_buffer_unref(buffer);
    throw;
  }
  gst_video_frame_unmap(&frame);
  return buffer;
}

void CudaFramePool::synchronize() { c10::cuda::getCurrentCUDAStream(device_.index()).synchronize(); }

}  // namespace la::gst

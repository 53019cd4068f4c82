#include "gst/cuda_frame_pool.h"

#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudamemory.h>

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <functional>
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

bool configure_and_activate(GstBufferPool* pool, GstCaps* caps, guint size, guint min, guint max) {
  GstStructure* config = gst_buffer_pool_get_config(pool);
  gst_buffer_pool_config_set_params(config, caps, size, min, max);
  gst_buffer_pool_config_add_option(config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  bool ok = gst_buffer_pool_set_config(pool, config);
  if (!ok) {
    // The pool amended the config (its own padded size, say): take its
    // version if it still holds our caps, at least our size and min
    // (gst_buffer_pool_config_validate_params). A pool that refused outright
    // (active, or buffers still outstanding) kept its old config, which is
    // not ours: setting that one again would "succeed" as unchanged.
    config = gst_buffer_pool_get_config(pool);
    if (gst_buffer_pool_config_validate_params(config, caps, size, min, max)) {
      ok = gst_buffer_pool_set_config(pool, config);
    } else {
      gst_structure_free(config);
    }
  }
  return ok && gst_buffer_pool_set_active(pool, TRUE);
}

GstBufferPool* activate_pool_or_own(GstBufferPool* preferred, const std::function<GstBufferPool*()>& make_own,
                                    GstCaps* caps, guint size, guint min, guint max, bool* used_preferred) {
  *used_preferred = false;
  if (preferred) {
    if (configure_and_activate(preferred, caps, size, min, max)) {
      *used_preferred = true;
      return preferred;
    }
    GST_INFO("downstream's buffer pool %" GST_PTR_FORMAT " refused the configuration: using our own", preferred);
    gst_object_unref(preferred);
  }
  GstBufferPool* own = make_own();
  if (own && configure_and_activate(own, caps, size, min, max)) return own;
  if (own) gst_object_unref(own);
  return nullptr;
}

CudaFramePool::CudaFramePool(GstPad* srcpad, GstCaps* caps, GstCudaContext* context, c10::Device device)
    : device_(device) {
  if (!gst_video_info_from_caps(&info_, caps)) throw std::runtime_error("cannot read the CUDAMemory video caps");
  format_ = video::pixel_format_from_name(gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info_)));
  guint min = 0, max = 0;
  GstBufferPool* downstream = downstream_cuda_pool(srcpad, caps, context, &min, &max);
  min = std::max(min, kMinBuffers);
  if (max != 0 && max < min) max = min;
  // Downstream's pool refuses a new configuration while buffers of the last
  // one are still downstream (a renegotiation, gst_buffer_pool_set_config's
  // "have_outstanding"): then frames come from our own pool in the context.
  pool_ = activate_pool_or_own(
      downstream, [context] { return gst_cuda_buffer_pool_new(context); }, caps,
      static_cast<guint>(GST_VIDEO_INFO_SIZE(&info_)), min, max, &downstream_pool_);
  if (!pool_) throw std::runtime_error("cannot configure and activate a GstCudaBufferPool");
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

#include "gst/cuda_context.h"

#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudautils.h>

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include "engine/runtime/cuda_runtime_info.h"

namespace la::gst {
namespace {

using PrimaryCtxRetain = CUresult (*)(CUcontext*, CUdevice);

// cuDevicePrimaryCtxRetain through the runtime's entry-point query: the plugin
// then needs no link-time libcuda.so, which machines without a driver lack.
PrimaryCtxRetain primary_ctx_retain() {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t e =
      cudaGetDriverEntryPointByVersion("cuDevicePrimaryCtxRetain", &fn, 12000, cudaEnableDefault, &found);
  if (e != cudaSuccess || found != cudaDriverEntryPointSuccess || !fn)
    throw std::runtime_error(std::string("the CUDA driver has no cuDevicePrimaryCtxRetain (") +
                             cudaGetErrorString(e) + ")");
  return reinterpret_cast<PrimaryCtxRetain>(fn);
}

}  // namespace

GstCudaContext* primary_cuda_context(int device_index) {
  static std::mutex lock;
  // Process lifetime: the primary context is never released (LibTorch keeps
  // it as long), and every element of the device shares this wrapper.
  static std::map<int, GstCudaContext*> contexts;
  std::lock_guard<std::mutex> g(lock);
  if (auto it = contexts.find(device_index); it != contexts.end())
    return static_cast<GstCudaContext*>(gst_object_ref(it->second));

  if (!gst_cuda_load_library())
    throw std::runtime_error("GStreamer's CUDA library cannot load the CUDA driver (libcuda.so.1)");
  gst_cuda_memory_init_once();
  // LibTorch has normally initialised the driver already; cuInit is idempotent.
  if (!gst_cuda_result(CuInit(0))) throw std::runtime_error("cuInit failed: the CUDA driver is not usable");
  CUdevice device = 0;
  if (!gst_cuda_result(CuDeviceGet(&device, device_index)))
    throw std::runtime_error("the CUDA driver has no device " + std::to_string(device_index));
  CUcontext primary = nullptr;
  const CUresult r = primary_ctx_retain()(&primary, device);
  if (r != CUDA_SUCCESS || !primary)
    throw std::runtime_error("cannot retain the primary CUDA context of device " + std::to_string(device_index) +
                             " (CUresult " + std::to_string(static_cast<int>(r)) + ")");
  GstCudaContext* wrapped = gst_cuda_context_new_wrapped(primary, device);
  if (!wrapped)
    throw std::runtime_error("gst_cuda_context_new_wrapped failed for device " + std::to_string(device_index));
  GST_OBJECT_FLAG_SET(wrapped, GST_OBJECT_FLAG_MAY_BE_LEAKED);  // the process-lifetime singleton above
  contexts[device_index] = wrapped;
  return static_cast<GstCudaContext*>(gst_object_ref(wrapped));
}

void announce_cuda_context(GstElement* element, GstCudaContext* context) {
  GstContext* c = gst_context_new_cuda_context(context);
  gst_element_post_message(element, gst_message_new_have_context(GST_OBJECT(element), c));
}

bool answer_cuda_context_query(GstElement* element, GstQuery* query, int cuda_device_id) {
  const gchar* type = nullptr;
  if (GST_QUERY_TYPE(query) != GST_QUERY_CONTEXT || !gst_query_parse_context_type(query, &type) ||
      g_strcmp0(type, GST_CUDA_CONTEXT_TYPE) != 0 || cuda_device_id < 0)
    return false;
  if (cuda_device_id >= runtime::query_cuda_runtime().device_count) return false;
  GstCudaContext* context = nullptr;
  try {
    context = primary_cuda_context(cuda_device_id);
  } catch (const std::exception& e) {
    GST_DEBUG_OBJECT(element, "no CUDA context for the query: %s", e.what());
    return false;
  }
  const bool answered = gst_cuda_handle_context_query(element, query, context);
  gst_object_unref(context);
  return answered;
}

}  // namespace la::gst

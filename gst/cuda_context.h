// The GstCudaContext of a CUDA device (DESIGN §4): LibTorch's primary context,
// wrapped with gst_cuda_context_new_wrapped(), one per device for the whole
// process. lavaedecode allocates its GstCudaMemory frames in it and shares it
// through GstContext ("gst.cuda.context"), so nvcodec elements that ask for a
// context after it (cudaconvert, nvh264enc, cudadownload) work on the same
// memory that LibTorch writes.
#pragma once

#include <gst/cuda/gstcudacontext.h>
#include <gst/gst.h>

namespace la::gst {

// A new reference to the device's wrapped primary context. Throws
// std::runtime_error naming the step that failed (GStreamer cannot load the
// CUDA driver library, no such device, ...).
GstCudaContext* primary_cuda_context(int device_index);

// Posts HAVE_CONTEXT with `context` from `element`: the bin keeps it and hands
// it to elements that post NEED_CONTEXT later.
void announce_cuda_context(GstElement* element, GstCudaContext* context);

// Answers a "gst.cuda.context" CONTEXT query with the wrapped primary context
// of `cuda_device_id`, made on demand: in any state, because nvcodec elements
// look for a context in their own NULL->READY (gst_cuda_ensure_element_context
// queries their pads' peers, then posts NEED_CONTEXT, then creates a context
// of their own), and a sink-first state change runs theirs before ours. The
// same object primary_cuda_context() gives, so nvh264enc's comparison of
// contexts finds ours. False (the query goes on) for another context type,
// -1, a device the runtime does not report, or when GStreamer cannot load the
// CUDA driver.
bool answer_cuda_context_query(GstElement* element, GstQuery* query, int cuda_device_id);

}  // namespace la::gst

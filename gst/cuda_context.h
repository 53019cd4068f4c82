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

}  // namespace la::gst

// Writing one tightly packed frame (a row of la::video::to_pixels) into a
// mapped GstVideoFrame whose planes have their own strides and offsets, on
// the CPU (system memory) or on a GPU (GstCudaMemory mapped with
// GST_MAP_CUDA, whose rows are pitch-aligned).
#pragma once

#include <gst/video/video.h>

#include <ATen/core/Tensor.h>

#include "engine/video/pixel_convert.h"

namespace la::gst {

// `packed` is uint8 [frame_bytes] on `device`, the device that owns the
// frame's plane pointers. On CUDA the copies are queued on the current
// stream: synchronise it before another stream or the CPU reads the frame.
// Throws std::invalid_argument when the sizes or formats disagree.
void copy_packed_frame(const at::Tensor& packed, video::PixelFormat format, GstVideoFrame* frame);

}  // namespace la::gst

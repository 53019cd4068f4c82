// Decoded video (float, nominally [-1,1]) to 8-bit frames, on the tensor's own
// device (CUDA tensors convert on the GPU; nothing is copied to the host).
//
// RGB/RGBA: clamp to [-1,1], (x+1)/2*255, then *truncate* like the reference's
// .type(torch.uint8) (wan_2_2/utils/utils.py), so our RGB frames are bit-exact
// with the frames the reference hands to its encoder.
// I420/NV12: BT.601 limited range (Y 16..235, Cb/Cr 16..240), from the clamped
// RGB in [0,1] with 2x2 chroma averaging, *rounded* to nearest: the reference
// has no YUV output to match, and rounding halves the quantisation error.
#pragma once

#include <ATen/core/Tensor.h>
#include <string>
#include <vector>

namespace la::video {

enum class PixelFormat { kRGB, kRGBA, kI420, kNV12 };

// "RGB", "RGBA", "I420", "NV12" (GStreamer's names).
PixelFormat pixel_format_from_name(const std::string& name);  // throws std::invalid_argument
const char* pixel_format_name(PixelFormat f);
// Bytes of one tightly packed frame.
int64_t frame_bytes(PixelFormat f, int64_t width, int64_t height);

// video [3,T,H,W] -> uint8 [T, frame_bytes] (H and W even for the YUV formats),
// each row one tightly packed frame: RGB/RGBA interleaved, I420 planes Y,U,V,
// NV12 plane Y then interleaved UV.
at::Tensor to_pixels(const at::Tensor& video, PixelFormat format);

// The planes of one tightly packed frame `packed` (uint8 [frame_bytes], as a
// row of to_pixels()) as views [rows, row_bytes], in GStreamer's plane order:
// RGB/RGBA one plane; I420 Y, U, V; NV12 Y, UV. For writing a frame into
// memory whose planes have other strides (GstCudaMemory pads its rows).
std::vector<at::Tensor> packed_planes(const at::Tensor& packed, PixelFormat format, int64_t width, int64_t height);

}  // namespace la::video

// The media types that flow between the liveavatar elements (docs/elements.md).
// Their caps carry the block's shape and dtype, so two elements that disagree
// fail at negotiation with a message naming the field, not later in a kernel.
//
//   application/x-liveavatar-features, layers=(int)25, channels=(int)1024,
//       frames=(int)12, dtype=(string)float32
//     one buffer = one block [layers, channels, frames], C-contiguous
//   application/x-liveavatar-latent, channels=(int)16, frames=(int)3,
//       latent-height=(int)h, latent-width=(int)w, dtype=(string){float32,bfloat16}
//     one buffer = one block [channels, frames, h, w], C-contiguous
#pragma once

#include <gst/gst.h>

#include <c10/core/ScalarType.h>
#include <cstdint>
#include <string>
#include <vector>

namespace la::gst {

inline constexpr const char* kFeaturesMediaType = "application/x-liveavatar-features";
inline constexpr const char* kLatentMediaType = "application/x-liveavatar-latent";

// Blocks between our elements may carry the caps feature below: the buffer's
// memory is then a tensor memory (gst/tensor_memory.h) that may hold a CUDA
// tensor, which a CPU element must not map. Producers on a GPU prefer it, so
// features and latents stay on the device, zero-copy (DESIGN §4); plain caps
// (system memory) remain for any other neighbour.
inline constexpr const char* kTensorMemoryFeature = "memory:LiveAvatarTensor";

// Pad template strings: what any element producing or consuming the type may
// carry, with and without the tensor-memory feature. Elements narrow them to
// the loaded model's sizes.
#define LA_FEATURES_CAPS_FIELDS                                                         \
  "layers=(int)[1,2147483647], channels=(int)[1,2147483647], frames=(int)12, dtype=(string)float32"
#define LA_FEATURES_CAPS_TEMPLATE                                                            \
  "application/x-liveavatar-features, " LA_FEATURES_CAPS_FIELDS "; "                           \
  "application/x-liveavatar-features(memory:LiveAvatarTensor), " LA_FEATURES_CAPS_FIELDS
#define LA_LATENT_CAPS_FIELDS                                                                     \
  "channels=(int)16, frames=(int)3, latent-height=(int)[1,268435455], latent-width=(int)[1,268435455], " \
  "dtype=(string){float32,bfloat16}"
#define LA_LATENT_CAPS_TEMPLATE                                                      \
  "application/x-liveavatar-latent, " LA_LATENT_CAPS_FIELDS "; "                     \
  "application/x-liveavatar-latent(memory:LiveAvatarTensor), " LA_LATENT_CAPS_FIELDS

// Video out of lavaedecode, and so out of liveavatarbin: GstCudaMemory
// (GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY, offered only when decoding on a GPU),
// then system memory. One string for both, so the bin's ghost pad can never
// refuse what its decoder makes.
#define LA_VIDEO_CAPS_FIELDS                                                                       \
  "format=(string){RGBA,RGB,I420,NV12}, width=(int)[8,2147483640], height=(int)[8,2147483640], " \
  "framerate=(fraction)25/1, pixel-aspect-ratio=(fraction)1/1"
#define LA_VIDEO_CAPS_TEMPLATE                                     \
  "video/x-raw(memory:CUDAMemory), " LA_VIDEO_CAPS_FIELDS "; " \
  "video/x-raw, " LA_VIDEO_CAPS_FIELDS

struct FeaturesShape {
  int layers = 0, channels = 0, frames = 0;  // dtype is always float32
  std::vector<int64_t> sizes() const { return {layers, channels, frames}; }
  bool operator==(const FeaturesShape& o) const {
    return layers == o.layers && channels == o.channels && frames == o.frames;
  }
};

struct LatentShape {
  int channels = 0, frames = 0, height = 0, width = 0;
  at::ScalarType dtype = at::kFloat;  // kFloat or kBFloat16
  std::vector<int64_t> sizes() const { return {channels, frames, height, width}; }
  bool operator==(const LatentShape& o) const {
    return channels == o.channels && frames == o.frames && height == o.height && width == o.width &&
           dtype == o.dtype;
  }
};

// "float32" / "bfloat16"; throws std::invalid_argument for other dtypes.
const char* caps_dtype_name(at::ScalarType dtype);

// Fixed caps for one shape (full ownership to the caller), system memory.
GstCaps* features_caps(const FeaturesShape& shape);
GstCaps* latent_caps(const LatentShape& shape);

// What a producer offers for fixed system-memory caps `plain` (taken): the
// same caps with and without the tensor-memory feature, the feature first
// when `prefer_tensor_memory` (the producer's tensors live on a GPU).
GstCaps* offer_with_tensor_memory(GstCaps* plain, bool prefer_tensor_memory);
bool has_tensor_memory_feature(const GstCaps* caps);

// Reads fixed caps of the type. Returns false with `why` naming the missing
// or malformed field ("field latent-width is missing", ...).
bool parse_features_caps(const GstCaps* caps, FeaturesShape* shape, std::string* why);
bool parse_latent_caps(const GstCaps* caps, LatentShape* shape, std::string* why);

}  // namespace la::gst

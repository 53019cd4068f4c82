// Reference-image preprocessing of the reference pipeline
// (causal_s2v_pipeline.py:752-757): resize the short side to min(H, W) with
// antialiased bilinear filtering, centre-crop to H x W (zero-padding an axis
// that came out short), scale to [-1, 1].
#pragma once

#include <ATen/core/Tensor.h>

#include "engine/video/output_size.h"

namespace la::video {

// rgb [h, w, 3] uint8 -> [3, H, W] float32 in [-1, 1]. Torch's antialiased
// bilinear is close to, not identical with, PIL's (documented in docs/dit.md).
at::Tensor prepare_reference_image(const at::Tensor& rgb, Size out);

}  // namespace la::video

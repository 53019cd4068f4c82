// What a stream is conditioned on, computed once per prompt or image: the
// umT5 states of the prompt, and the VAE latents of the reference image (the
// sink's reference frame and the static motion clip the reference pipeline
// builds by repeating the image 73 times).
#pragma once

#include <ATen/core/Tensor.h>
#include <string>

#include "engine/models/umt5/encoder.h"
#include "engine/models/umt5/tokenizer.h"
#include "engine/models/wan_vae/wan_vae.h"

namespace la::session {

// Cleaned, tokenized and encoded prompt, trimmed to its real tokens:
// [tokens, text_dim] on the encoder's device.
at::Tensor encode_prompt_states(const models::Umt5Encoder& t5, const models::Umt5Tokenizer& tokenizer,
                                const std::string& prompt);

struct ReferenceLatents {
  at::Tensor ref;     // [16, 1, h, w]: the image as one frame (the multi-GPU reference pipeline's encoding)
  at::Tensor motion;  // [16, 19, h, w]: the image repeated `motion_frames` times
};

// image [3, H, W] in [-1, 1] (see video/reference_image.h) -> latents.
ReferenceLatents encode_reference(const models::WanVae& vae, const at::Tensor& image, int64_t motion_frames = 73);

}  // namespace la::session

#include "engine/session/conditioning.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

namespace la::session {

at::Tensor encode_prompt_states(const models::Umt5Encoder& t5, const models::Umt5Tokenizer& tokenizer,
                                const std::string& prompt) {
  c10::InferenceMode guard;
  const auto tokens = tokenizer.tokenize(prompt);
  const at::Tensor hidden = t5.forward(tokens.ids, tokens.mask);  // [1, text_len, dim]
  return hidden[0].narrow(0, 0, tokens.length).clone();
}

ReferenceLatents encode_reference(const models::WanVae& vae, const at::Tensor& image, int64_t motion_frames) {
  c10::InferenceMode guard;
  const at::Tensor frame = image.unsqueeze(1).to(vae.device(), vae.dtype());  // [3, 1, H, W]
  ReferenceLatents r;
  r.ref = vae.encode(frame);
  r.motion = vae.encode(frame.expand({3, motion_frames, frame.size(2), frame.size(3)}).contiguous());
  return r;
}

}  // namespace la::session

#include "elements/avatar_generator.h"

#include <ATen/ATen.h>
#include <stdexcept>

#include "engine/runtime/cuda_runtime_info.h"
#include "engine/session/conditioning.h"
#include "engine/video/reference_image.h"

namespace la::elements {

AvatarGenerator::AvatarGenerator(GeneratorModels models, video::Size output, session::SessionOptions options)
    : models_(std::move(models)),
      output_(output),
      session_(models_.dit, output.height / 8, output.width / 8, options) {
  if (output.height % 16 || output.width % 16)
    throw std::invalid_argument("output size must be a multiple of 16 (VAE stride 8 x DiT patch 2)");
}

void AvatarGenerator::set_prompt(const std::string& prompt) {
  const bool offloaded = !models_.t5;
  {
    // Offloaded: this is the only reference, dropped when the prompt is encoded.
    const std::shared_ptr<const models::Umt5Encoder> t5 = offloaded ? models_.load_t5() : models_.t5;
    if (!t5) throw std::logic_error("AvatarGenerator has no umT5 encoder");
    session_.set_prompt(session::encode_prompt_states(*t5, *models_.tokenizer, prompt));
  }
  // The encoder's weights went back to LibTorch's caching allocator, which
  // would keep them reserved: hand them to the device.
  if (offloaded) runtime::release_cached_device_memory(models_.dit->device());
}

void AvatarGenerator::set_image(const at::Tensor& rgb) {
  const at::Tensor image = video::prepare_reference_image(rgb, output_);
  const auto latents = session::encode_reference(*models_.vae, image);
  session_.set_reference(latents.ref, latents.motion);
}

at::Tensor AvatarGenerator::next_block(const at::Tensor& features) {
  // On the DiT's device; the element decides whether they go to the host.
  return session_.next_block(features).contiguous();
}

}  // namespace la::elements

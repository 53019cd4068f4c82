#include "elements/avatar_generator.h"

#include <ATen/ATen.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <stdexcept>

#include "engine/runtime/cuda_runtime_info.h"
#include "engine/session/conditioning.h"
#include "engine/video/reference_image.h"

namespace la::elements {

AvatarGenerator::AvatarGenerator(GeneratorModels models, video::Size output, session::SessionOptions options,
                                 parallel::GpuHandover handover)
    : models_(std::move(models)), output_(output) {
  if (output.height % 16 || output.width % 16)
    throw std::invalid_argument("output size must be a multiple of 16 (VAE stride 8 x DiT patch 2)");
  if (models_.dit_parts.size() > 1)
    pipeline_ = std::make_unique<parallel::DitPipeline>(models_.dit_parts, models_.dit_stages, output.height / 8,
                                                        output.width / 8, options, handover);
  else
    session_ = std::make_unique<session::GenerationSession>(models_.dit, output.height / 8, output.width / 8, options);
}

void AvatarGenerator::set_prompt(const std::string& prompt) {
  const bool offloaded = !models_.t5;
  {
    // Offloaded: this is the only reference, dropped when the prompt is encoded.
    const std::shared_ptr<const models::Umt5Encoder> t5 = offloaded ? models_.load_t5() : models_.t5;
    if (!t5) throw std::logic_error("AvatarGenerator has no umT5 encoder");
    const at::Tensor states = session::encode_prompt_states(*t5, *models_.tokenizer, prompt);
    if (pipeline_) pipeline_->set_prompt(states);
    else session_->set_prompt(states);
    // The model cache may share this encoder with another generator, which loaded it on its own
    // stream: if this reference is the last, its memory goes back to that stream's pool while
    // this stream's kernels may still read it. Once per prompt, and emptyCache waits anyway.
    if (offloaded && t5->device().is_cuda())
      c10::impl::VirtualGuardImpl(t5->device().type()).getStream(t5->device()).synchronize();
  }
  // The encoder's weights went back to LibTorch's caching allocator, which
  // would keep them reserved: hand them to the device.
  if (offloaded) runtime::release_cached_device_memory(models_.dit->device());
}

void AvatarGenerator::set_image(const at::Tensor& rgb) {
  const at::Tensor image = video::prepare_reference_image(rgb, output_);
  const auto latents = session::encode_reference(*models_.vae, image);
  if (pipeline_) pipeline_->set_reference(latents.ref, latents.motion);
  else session_->set_reference(latents.ref, latents.motion);
}

void AvatarGenerator::submit(const at::Tensor& features) {
  if (pipeline_) pipeline_->submit(features);
  else ready_.push_back(session_->next_block(features));
  ++blocks_;
}

at::Tensor AvatarGenerator::take() {
  // On the DiT's (last stage's) device; the element decides whether they go to the host.
  if (pipeline_) return pipeline_->take().contiguous();
  if (ready_.empty()) throw std::logic_error("AvatarGenerator::take with no block submitted");
  at::Tensor x = std::move(ready_.front());
  ready_.pop_front();
  return x.contiguous();
}

at::Tensor AvatarGenerator::try_take() {
  if (pipeline_) {
    at::Tensor x = pipeline_->try_take();
    return x.defined() ? x.contiguous() : x;
  }
  return ready_.empty() ? at::Tensor() : take();  // one device: submit() generated it
}

int64_t AvatarGenerator::pending() const {
  return pipeline_ ? pipeline_->pending() : static_cast<int64_t>(ready_.size());
}

at::Tensor AvatarGenerator::next_block(const at::Tensor& features) {
  submit(features);
  return take();
}

void AvatarGenerator::reset() {
  if (pipeline_) pipeline_->reset();
  else session_->reset();
  ready_.clear();
  blocks_ = 0;
}

}  // namespace la::elements

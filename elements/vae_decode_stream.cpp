#include "elements/vae_decode_stream.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <stdexcept>
#include <string>

namespace la::elements {

VaeDecodeStream::VaeDecodeStream(std::shared_ptr<const models::WanVae> vae, video::PixelFormat format, bool online,
                                 bool pixels_on_device)
    : vae_(std::move(vae)), format_(format), online_(online), pixels_on_device_(pixels_on_device) {}

std::vector<DecodedBlock> VaeDecodeStream::push(const at::Tensor& latents, uint64_t pts) {
  if (latents.dim() != 4 || latents.size(1) != 3)
    throw std::invalid_argument("latent block has " + std::to_string(latents.dim()) +
                                " dimensions / frames, expected [z,3,h,w]");
  if (online_) return decode({latents}, {pts});
  // Keep our own copy on the model's device: the buffer's memory goes back upstream.
  kept_.push_back(latents.to(vae_->device(), vae_->dtype(), /*non_blocking=*/false, /*copy=*/true));
  kept_pts_.push_back(pts);
  return {};
}

std::vector<DecodedBlock> VaeDecodeStream::finish() {
  std::vector<DecodedBlock> out;
  if (!kept_.empty()) out = decode(kept_, kept_pts_);
  reset();
  return out;
}

void VaeDecodeStream::reset() {
  state_.reset();
  kept_.clear();
  kept_pts_.clear();
}

std::vector<DecodedBlock> VaeDecodeStream::decode(const std::vector<at::Tensor>& blocks,
                                                  const std::vector<uint64_t>& pts) {
  c10::InferenceMode inference;
  const at::Tensor latents = blocks.size() == 1 ? blocks[0] : at::cat(blocks, 1);
  // Prime a fresh stream with its first latent frame (see the header).
  if (!state_.started()) vae_->decode(state_, latents.slice(1, 0, 1));
  const at::Tensor video = vae_->decode(state_, latents);  // [3, 12 * blocks, H, W]
  if (video.size(1) != kFramesPerLatentBlock * static_cast<int64_t>(blocks.size()))
    throw std::logic_error("the primed VAE gave " + std::to_string(video.size(1)) + " frames for " +
                           std::to_string(blocks.size()) + " blocks");
  // System-memory output: the frames come to the host here. CUDA-memory
  // output: they stay on the device and are copied into GstCudaMemory there.
  at::Tensor pixels = video::to_pixels(video, format_);
  pixels = (pixels_on_device_ ? pixels : pixels.to(at::kCPU)).contiguous();
  std::vector<DecodedBlock> out;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const auto first = static_cast<int64_t>(b) * kFramesPerLatentBlock;
    out.push_back({pts[b], pixels.slice(0, first, first + kFramesPerLatentBlock)});
  }
  return out;
}

}  // namespace la::elements

// lavaedecode's work without GStreamer: latent blocks [16,3,h,w] in, 8-bit
// frames out, 12 per block, continuing one causal VAE stream.
//
// The first block of a stream. A fresh causal decoder turns its first latent
// frame into 1 video frame (then 4 per latent), so the first block would give
// 9 frames. The reference (pipeline.md §A.9, D.3) primes the decoder with 7
// motion latents of the reference image, decodes the block into 12 frames and
// drops the first 3, so it emits 9, and its video runs 3 frames (120 ms)
// ahead of the audio. Here the decoder is primed with the block's own first
// latent frame (its 1 output frame is discarded); the block then decodes as
// a continuation into 12 frames. Every block gives exactly 12 frames and
// frame n of the stream belongs to audio time t0 + n/25 s (DESIGN §1).
// (liveavatargen may later hand over its motion latents as the primer.)
//
// online:  each push() decodes its block at once.
// offline: push() keeps the latents; finish() decodes them all in one call,
//          the reference's default. Because the decoder runs latent frame by
//          latent frame, both give the same frames bit for bit.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/models/wan_vae/wan_vae.h"
#include "engine/video/pixel_convert.h"

namespace la::elements {

constexpr int64_t kFramesPerLatentBlock = 12;

struct DecodedBlock {
  uint64_t pts;       // the latent block's timestamp, passed through
  at::Tensor pixels;  // uint8 [12, frame_bytes], one tightly packed frame per row, on the
                      // CPU or (pixels_on_device) on the VAE's device
};

class VaeDecodeStream {
 public:
  // pixels_on_device: frames stay on the VAE's device (for GstCudaMemory
  // output) instead of coming to the host.
  VaeDecodeStream(std::shared_ptr<const models::WanVae> vae, video::PixelFormat format, bool online,
                  bool pixels_on_device = false);

  // latents [z,3,h,w] of any float dtype and device. Throws
  // std::invalid_argument on bad shapes.
  std::vector<DecodedBlock> push(const at::Tensor& latents, uint64_t pts);
  // Offline: decodes every kept block. The stream is empty afterwards.
  std::vector<DecodedBlock> finish();
  // A new stream (flush, new segment, new caps): forgets the cache and kept blocks.
  void reset();

  // Output format for the next blocks (downstream renegotiated); the decoder
  // stream goes on.
  void set_format(video::PixelFormat format, bool pixels_on_device = false) {
    format_ = format;
    pixels_on_device_ = pixels_on_device;
  }
  bool online() const { return online_; }
  size_t pending_blocks() const { return kept_.size(); }

 private:
  std::vector<DecodedBlock> decode(const std::vector<at::Tensor>& blocks, const std::vector<uint64_t>& pts);

  std::shared_ptr<const models::WanVae> vae_;
  video::PixelFormat format_;
  bool online_;
  bool pixels_on_device_;
  models::WanVaeDecodeState state_;
  std::vector<at::Tensor> kept_;  // offline: latents until finish()
  std::vector<uint64_t> kept_pts_;
};

}  // namespace la::elements

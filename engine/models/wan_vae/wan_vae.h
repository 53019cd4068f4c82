// The Wan 2.1 VAE: an immutable model shared by any number of streams, and
// per-stream state for streaming decode (whisper.cpp's model vs state split).
//
//   auto vae = WanVae::load(ckpt + "/Wan2.1_VAE.pth", at::kCPU, at::kFloat);
//   WanVaeDecodeState state;                        // one per stream
//   at::Tensor frames = vae->decode(state, block);  // [16,3,h,w] -> [3,9 or 12,8h,8w]
//
// Thread safety: a WanVae may be used from many threads at once; a state by
// one thread at a time.
#pragma once

#include <ATen/core/Tensor.h>
#include <memory>
#include <string>

#include "engine/models/wan_vae/feature_cache.h"
#include "engine/models/wan_vae/weights.h"

namespace la::io { class WeightStore; }

namespace la::models {

// The causal cache of one decoded stream. A default-constructed (or reset)
// state starts a new stream: its first call yields 1 + 4(n-1) frames for n
// latent frames, later calls 4n.
class WanVaeDecodeState {
 public:
  void reset() { cache_.clear(); frames_out_ = 0; }
  bool started() const { return !cache_.empty(); }
  int64_t frames_out() const { return frames_out_; }

 private:
  friend class WanVae;
  wan_vae::FeatureCache cache_;
  int64_t frames_out_ = 0;
};

// The cache of one streamed encode (the reference's stream_encode): the first
// call encodes frame 0, then the rest of that call as one chunk; later calls
// take multiples of 4 frames.
class WanVaeEncodeState {
 public:
  void reset() { cache_.clear(); }
  bool started() const { return !cache_.empty(); }

 private:
  friend class WanVae;
  wan_vae::FeatureCache cache_;
};

class WanVae {
 public:
  // Loads Wan2.1_VAE.pth (or a .safetensors with the same keys); sizes are read
  // from the tensors. Throws io::CheckpointError.
  static std::shared_ptr<const WanVae> load(const std::string& path, at::Device device, at::ScalarType dtype);
  // record_autograd (tools/miniature trains through this code): encode and
  // decode record the autograd graph instead of running in inference mode,
  // and float32 weights on their device are the store's tensors themselves.
  static std::shared_ptr<const WanVae> from_store(io::WeightStore& store, const WanVaeConfig& config,
                                                  at::Device device, at::ScalarType dtype,
                                                  bool record_autograd = false);

  const WanVaeConfig& config() const { return w_.config; }
  at::Device device() const { return w_.mean.device(); }
  at::ScalarType dtype() const { return w_.mean.scalar_type(); }
  const at::Tensor& latent_mean() const { return w_.mean; }
  const at::Tensor& latent_inv_std() const { return w_.inv_std; }

  // video [3,T,H,W] in [-1,1], T = 1+4k, H and W multiples of 8 ->
  // normalised latents [z,1+k,H/8,W/8] (float32). Throws std::invalid_argument.
  at::Tensor encode(const at::Tensor& video) const;
  // The encoder mean before normalisation.
  at::Tensor encode_raw(const at::Tensor& video) const;
  at::Tensor stream_encode(WanVaeEncodeState& state, const at::Tensor& video) const;

  // Normalised latents [z,n,h,w] -> video [3,F,8h,8w] (float32, not clamped),
  // continuing `state`'s stream. Throws std::invalid_argument on bad shapes.
  at::Tensor decode(WanVaeDecodeState& state, const at::Tensor& latents) const;
  // One whole stream: decode with a fresh state.
  at::Tensor decode(const at::Tensor& latents) const;

 private:
  WanVae(wan_vae::Weights w, bool record_autograd) : w_(std::move(w)), record_autograd_(record_autograd) {}
  // Validated full encode up to the raw mean [1,z,1+k,h,w] in the model dtype.
  at::Tensor encode_mu(const at::Tensor& video) const;
  at::Tensor encode_chunks(wan_vae::FeatureCache& cache, const at::Tensor& video, bool stream_first) const;
  at::Tensor normalise(const at::Tensor& mu) const;
  wan_vae::Weights w_;
  bool record_autograd_;
};

}  // namespace la::models

#include "engine/models/wan_vae/wan_vae.h"

#include <ATen/ATen.h>
#include <stdexcept>

#include "engine/io/tensor_view.h"
#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/models/wan_vae/blocks.h"
#include "engine/nn/conv.h"
#include "engine/nn/inference_guard.h"

namespace la::models {
namespace {

using wan_vae::FeatureCache;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

at::Tensor as_batch(const at::Tensor& x, const char* what, int64_t channels, at::Device device,
                    at::ScalarType dtype) {
  require(x.defined() && x.dim() == 4, std::string(what) + " must be a 4-D tensor [C,T,H,W], got " +
                                           (x.defined() ? io::shape_string(x.sizes()) : std::string("none")));
  require(x.size(0) == channels, std::string(what) + " must have " + std::to_string(channels) +
                                     " channels, got shape " + io::shape_string(x.sizes()));
  require(at::isFloatingType(x.scalar_type()), std::string(what) + " must be floating point");
  require(x.size(1) >= 1, std::string(what) + " has no frames");
  return x.unsqueeze(0).to(device, dtype);
}

void require_pixels(const at::Tensor& video) {
  require(video.size(2) % 8 == 0 && video.size(3) % 8 == 0,
          "video height and width must be multiples of 8, got " + io::shape_string(video.sizes()));
}

}  // namespace

std::shared_ptr<const WanVae> WanVae::load(const std::string& path, at::Device device, at::ScalarType dtype) {
  auto store = io::WeightStore::open(path);
  return from_store(store, infer_wan_vae_config(store), device, dtype);
}

std::shared_ptr<const WanVae> WanVae::from_store(io::WeightStore& store, const WanVaeConfig& config,
                                                 at::Device device, at::ScalarType dtype, bool record_autograd) {
  return std::shared_ptr<const WanVae>(
      new WanVae(wan_vae::load_weights(store, config, device, dtype), record_autograd));
}

at::Tensor WanVae::encode_chunks(FeatureCache& cache, const at::Tensor& x, bool stream_first) const {
  const int64_t t = x.size(2);
  std::vector<at::Tensor> out;
  if (!cache.empty() && !stream_first) {
    for (int64_t i = 0; i + 4 <= t; i += 4) out.push_back(wan_vae::coder_forward(x.slice(2, i, i + 4), w_.encoder, cache));
  } else {
    out.push_back(wan_vae::coder_forward(x.slice(2, 0, 1), w_.encoder, cache));
    if (stream_first) {
      if (t > 1) out.push_back(wan_vae::coder_forward(x.slice(2, 1, t), w_.encoder, cache));
    } else {
      for (int64_t i = 1; i < t; i += 4) out.push_back(wan_vae::coder_forward(x.slice(2, i, i + 4), w_.encoder, cache));
    }
  }
  const at::Tensor moments = nn::causal_conv3d(at::cat(out, 2), w_.quant_conv, {0, 0, 0});
  return moments.slice(1, 0, w_.config.z_dim);  // mu; the log-variance is unused
}

at::Tensor WanVae::normalise(const at::Tensor& mu) const {
  const int64_t z = w_.config.z_dim;
  return (mu - w_.mean.view({1, z, 1, 1, 1})) * w_.inv_std.view({1, z, 1, 1, 1});
}

at::Tensor WanVae::encode_mu(const at::Tensor& video) const {
  const at::Tensor x = as_batch(video, "video", 3, device(), dtype());
  require((x.size(2) - 1) % 4 == 0, "video frame count must be 1+4k, got " + std::to_string(x.size(2)));
  require_pixels(video);
  FeatureCache cache;
  return encode_chunks(cache, x, false);
}

at::Tensor WanVae::encode_raw(const at::Tensor& video) const {
  nn::InferenceGuard inference(record_autograd_);  // no autograd bookkeeping on any tensor made here
  return encode_mu(video).to(at::kFloat).squeeze(0);
}

at::Tensor WanVae::encode(const at::Tensor& video) const {
  nn::InferenceGuard inference(record_autograd_);
  return normalise(encode_mu(video)).to(at::kFloat).squeeze(0);
}

at::Tensor WanVae::stream_encode(WanVaeEncodeState& state, const at::Tensor& video) const {
  nn::InferenceGuard inference(record_autograd_);
  const at::Tensor x = as_batch(video, "video", 3, device(), dtype());
  require_pixels(video);
  const bool first = !state.started();
  require(first || x.size(2) % 4 == 0,
          "after the first call, stream_encode takes multiples of 4 frames, got " + std::to_string(x.size(2)));
  return normalise(encode_chunks(state.cache_, x, first)).to(at::kFloat).squeeze(0);
}

at::Tensor WanVae::decode(WanVaeDecodeState& state, const at::Tensor& latents) const {
  nn::InferenceGuard inference(record_autograd_);
  const int64_t z = w_.config.z_dim;
  at::Tensor x = as_batch(latents, "latents", z, device(), dtype());
  // Un-normalise by dividing by the stored reciprocal, as the reference does.
  x = x / w_.inv_std.view({1, z, 1, 1, 1}) + w_.mean.view({1, z, 1, 1, 1});
  std::vector<at::Tensor> out;
  out.reserve(x.size(2));
  // One latent frame at a time, like the reference. conv2 (1x1x1) is applied
  // per frame too, so every kernel sees the same shapes however a stream is
  // split into calls, and streamed output equals a full decode bit for bit.
  for (int64_t i = 0; i < x.size(2); ++i) {
    const at::Tensor frame = nn::causal_conv3d(x.slice(2, i, i + 1), w_.post_quant_conv, {0, 0, 0});
    out.push_back(wan_vae::coder_forward(frame, w_.decoder, state.cache_));
  }
  at::Tensor video = at::cat(out, 2).to(at::kFloat).squeeze(0);
  state.frames_out_ += video.size(1);
  return video;
}

at::Tensor WanVae::decode(const at::Tensor& latents) const {
  WanVaeDecodeState state;
  return decode(state, latents);
}

}  // namespace la::models

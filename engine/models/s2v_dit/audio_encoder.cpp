#include "engine/models/s2v_dit/audio_encoder.h"

#include <ATen/ATen.h>
#include <stdexcept>

#include "engine/io/tensor_view.h"
#include "engine/io/weight_store.h"

namespace la::models {
namespace {

// CausalConv1d: replicate-pad k-1 frames in front, then the conv.
at::Tensor causal_conv1d(const at::Tensor& x, const nn::Conv& c, int64_t stride) {
  const int64_t k = c.weight.size(2);
  const at::Tensor padded = at::pad(x, {k - 1, 0}, "replicate");
  return at::conv1d(padded, c.weight, c.bias, {stride});
}

// LayerNorm without affine over the channel dim of [N,C,T], then SiLU; stays [N,C,T].
at::Tensor norm_silu_channels(const at::Tensor& x) {
  const at::Tensor t = x.transpose(1, 2);
  return at::silu(at::layer_norm(t, {t.size(2)}, {}, {}, 1e-6)).transpose(1, 2);
}

}  // namespace

CausalAudioEncoder CausalAudioEncoder::from_store(io::WeightStore& store, const std::string& prefix,
                                                  const AudioEncoderConfig& c, at::Device device) {
  auto get = [&](const std::string& key, std::vector<int64_t> shape) {
    return store.get(prefix + key, shape).to(device, at::kFloat);
  };
  auto conv = [&](const std::string& name, int64_t out, int64_t in, int64_t k) {
    return nn::Conv{get("encoder." + name + ".weight", {out, in, k}), get("encoder." + name + ".bias", {out})};
  };
  CausalAudioEncoder e;
  e.config_ = c;
  e.layer_weights_ = get("weights", {1, c.num_layers, 1, 1});
  e.conv_local_ = conv("conv1_local.conv", c.dim / 4 * c.num_tokens, c.audio_dim, 3);
  e.conv_global_ = conv("conv1_global.conv", c.dim / 4, c.audio_dim, 3);
  e.conv2_ = conv("conv2.conv", c.dim / 2, c.dim / 4, 3);
  e.conv3_ = conv("conv3.conv", c.dim, c.dim / 2, 3);
  e.final_linear_ = {get("encoder.final_linear.weight", {c.dim, c.dim}), get("encoder.final_linear.bias", {c.dim})};
  e.padding_tokens_ = get("encoder.padding_tokens", {1, 1, 1, c.dim});
  return e;
}

int64_t CausalAudioEncoder::bytes() const {
  auto of = [](const at::Tensor& t) { return t.defined() ? static_cast<int64_t>(t.nbytes()) : int64_t{0}; };
  int64_t n = of(layer_weights_) + of(padding_tokens_);
  for (const nn::Conv* c : {&conv_local_, &conv_global_, &conv2_, &conv3_, &final_linear_}) n += of(c->weight) + of(c->bias);
  return n;
}

at::Tensor CausalAudioEncoder::trunk(at::Tensor x) const {
  x = causal_conv1d(norm_silu_channels(x), conv2_, 2);
  x = causal_conv1d(norm_silu_channels(x), conv3_, 2);
  return norm_silu_channels(x).transpose(1, 2);  // [N, T', dim]
}

std::pair<at::Tensor, at::Tensor> CausalAudioEncoder::forward(const at::Tensor& features) const {
  const auto& c = config_;
  if (features.dim() != 4 || features.size(1) != c.num_layers || features.size(2) != c.audio_dim || features.size(3) < 1)
    throw std::invalid_argument("audio features must be [B," + std::to_string(c.num_layers) + "," +
                                std::to_string(c.audio_dim) + ",T>0], got " + io::shape_string(features.sizes()));
  const int64_t b = features.size(0);
  const at::Tensor f = features.to(layer_weights_.device(), at::kFloat);
  const at::Tensor w = at::silu(layer_weights_);
  const at::Tensor x = ((f * w) / w.sum(1, true)).sum(1);  // [B, audio_dim, T]

  // Local: num_tokens groups of dim/4 channels, each through the shared trunk.
  at::Tensor local = causal_conv1d(x, conv_local_, 1);  // [B, n*dim/4, T]
  const int64_t t = local.size(2);
  local = local.view({b * c.num_tokens, c.dim / 4, t});
  local = trunk(local);  // [B*n, T', dim]
  const int64_t t_out = local.size(1);
  local = local.view({b, c.num_tokens, t_out, c.dim}).permute({0, 2, 1, 3});
  local = at::cat({local, padding_tokens_.expand({b, t_out, 1, c.dim})}, 2);

  at::Tensor global = trunk(causal_conv1d(x, conv_global_, 1));  // [B, T', dim]
  global = at::linear(global, final_linear_.weight, final_linear_.bias).unsqueeze(2);
  return {global, local.contiguous()};
}

std::pair<at::Tensor, at::Tensor> CausalAudioEncoder::block_tokens(const at::Tensor& block, int64_t motion_frames,
                                                                   int64_t motion_latent_frames) const {
  if (block.dim() != 4 || block.size(3) < 1)
    throw std::invalid_argument("audio block must be [B,layers,dim,F>0], got " + io::shape_string(block.sizes()));
  const at::Tensor prefix = block.slice(3, 0, 1).expand({block.size(0), block.size(1), block.size(2), motion_frames});
  auto [global, local] = forward(at::cat({prefix, block}, 3));
  return {global.slice(1, motion_latent_frames), local.slice(1, motion_latent_frames)};
}

}  // namespace la::models

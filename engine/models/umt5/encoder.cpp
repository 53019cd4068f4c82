#include "engine/models/umt5/encoder.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "engine/io/checkpoint_error.h"
#include "engine/io/tensor_view.h"
#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/nn/attention.h"

namespace la::models {
namespace {

constexpr double kNormEps = 1e-6;

// T5LayerNorm: RMS over the last dim in fp32, cast back to a reduced-precision
// weight dtype before the gain, as the reference does.
at::Tensor t5_rms_norm(const at::Tensor& x, const at::Tensor& weight) {
  const at::Tensor xf = x.to(at::kFloat);
  at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, true) + kNormEps);
  if (weight.scalar_type() == at::kHalf || weight.scalar_type() == at::kBFloat16) y = y.to(weight.scalar_type());
  return weight * y;
}

// The reference's tanh-approximated GELU, written out as it does.
at::Tensor gelu_tanh(const at::Tensor& x) {
  return 0.5 * x * (1.0 + at::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * at::pow(x, 3.0))));
}

// torch.finfo(dtype).min: what the reference fills padded keys with.
at::Scalar finite_lowest(at::ScalarType t) {
  switch (t) {
    case at::kBFloat16: return std::numeric_limits<c10::BFloat16>::lowest();
    case at::kHalf: return std::numeric_limits<c10::Half>::lowest();
    case at::kDouble: return std::numeric_limits<double>::lowest();
    default: return std::numeric_limits<float>::lowest();
  }
}

}  // namespace

std::shared_ptr<const Umt5Encoder> Umt5Encoder::load(const std::string& path, at::Device device,
                                                     at::ScalarType dtype) {
  auto store = io::WeightStore::open(path);
  return from_store(store, infer_umt5_config(store), device, dtype);
}

std::shared_ptr<const Umt5Encoder> Umt5Encoder::from_store(io::WeightStore& store, const Umt5Config& config,
                                                           at::Device device, at::ScalarType dtype) {
  for (const auto& spec : umt5_tensor_specs(config)) store.get(spec.name, spec.shape);
  const auto unused = store.unused_keys();
  if (!unused.empty())
    throw io::CheckpointError(store.file_of(unused.front()), unused.front(),
                              "is not part of a umT5 encoder (" + std::to_string(unused.size()) + " unexpected tensors)");
  if (config.num_heads <= 0 || config.dim_attn % config.num_heads != 0)
    throw io::CheckpointError(store.file_of("token_embedding.weight"),
                              "dim_attn " + std::to_string(config.dim_attn) + " does not divide into " +
                                  std::to_string(config.num_heads) + " heads");
  auto get = [&](const std::string& key) { return store.get_unchecked(key).to(device, dtype); };
  std::shared_ptr<Umt5Encoder> enc(new Umt5Encoder());
  enc->config_ = config;
  enc->token_embedding_ = get("token_embedding.weight");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = "blocks." + std::to_string(i);
    enc->blocks_.push_back({get(p + ".norm1.weight"), get(p + ".attn.q.weight"), get(p + ".attn.k.weight"),
                            get(p + ".attn.v.weight"), get(p + ".attn.o.weight"), get(p + ".norm2.weight"),
                            get(p + ".ffn.gate.0.weight"), get(p + ".ffn.fc1.weight"), get(p + ".ffn.fc2.weight"),
                            get(p + ".pos_embedding.embedding.weight")});
  }
  enc->final_norm_ = get("norm.weight");
  return enc;
}

at::Tensor Umt5Encoder::relative_position_buckets(int64_t lq, int64_t lk, int64_t num_buckets, int64_t max_distance) {
  const at::Tensor rel = at::arange(lk).unsqueeze(0) - at::arange(lq).unsqueeze(1);  // key - query
  const int64_t half = num_buckets / 2;
  const at::Tensor offset = rel.gt(0).to(at::kLong) * half;
  const at::Tensor dist = rel.abs();
  const int64_t max_exact = half / 2;
  // fp32 log as the reference computes it, truncated toward zero by .long()
  const at::Tensor large =
      (at::log(dist.to(at::kFloat) / static_cast<float>(max_exact)) /
           static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) * static_cast<float>(half - max_exact))
          .to(at::kLong) + max_exact;
  return offset + at::where(dist.lt(max_exact), dist, large.clamp_max(half - 1));
}

at::Tensor Umt5Encoder::position_bias(int64_t layer, int64_t lq, int64_t lk) const {
  return bias_from_buckets(layer, relative_position_buckets(lq, lk, config_.num_buckets).to(device()));
}

at::Tensor Umt5Encoder::bias_from_buckets(int64_t layer, const at::Tensor& buckets) const {
  // [lq, lk, heads] -> [1, heads, lq, lk]
  return at::embedding(blocks_.at(layer).pos_embedding, buckets).permute({2, 0, 1}).unsqueeze(0).contiguous();
}

at::Tensor Umt5Encoder::block_forward(const Block& b, const at::Tensor& x, const at::Tensor& key_mask,
                                      const at::Tensor& buckets, int64_t layer) const {
  const int64_t batch = x.size(0), len = x.size(1), heads = config_.num_heads;
  const int64_t head_dim = config_.dim_attn / heads;
  const at::Tensor h = t5_rms_norm(x, b.norm1);
  auto split = [&](const at::Tensor& t) { return t.view({batch, len, heads, head_dim}).transpose(1, 2); };
  const at::Tensor q = split(at::linear(h, b.q)), k = split(at::linear(h, b.k)), v = split(at::linear(h, b.v));
  at::Tensor bias = bias_from_buckets(layer, buckets).to(x.scalar_type()).expand({batch, heads, len, len}).clone();
  if (key_mask.defined()) bias.masked_fill_(key_mask.view({batch, 1, 1, len}).logical_not(), finite_lowest(x.scalar_type()));
  // T5 attention is unscaled.
  const at::Tensor attn = nn::attention(q, k, v, bias, 1.0).transpose(1, 2).reshape({batch, len, heads * head_dim});
  at::Tensor y = x + at::linear(attn, b.o);
  const at::Tensor f = t5_rms_norm(y, b.norm2);
  return y + at::linear(at::linear(f, b.fc1) * gelu_tanh(at::linear(f, b.gate)), b.fc2);
}

at::Tensor Umt5Encoder::forward(const at::Tensor& ids, const std::optional<at::Tensor>& mask) const {
  c10::InferenceMode inference;
  if (ids.dim() != 2 || !at::isIntegralType(ids.scalar_type(), false))
    throw std::invalid_argument("token ids must be an integer tensor [B,L], got " + io::shape_string(ids.sizes()));
  if (ids.numel() == 0) throw std::invalid_argument("token ids are empty");
  const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
  if (lo < 0 || hi >= config_.vocab)
    throw std::invalid_argument("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary of " +
                                std::to_string(config_.vocab));
  at::Tensor key_mask;
  if (mask) {
    if (mask->sizes() != ids.sizes())
      throw std::invalid_argument("mask shape " + io::shape_string(mask->sizes()) + " differs from ids " +
                                  io::shape_string(ids.sizes()));
    key_mask = mask->ne(0).to(device());
  }
  at::Tensor x = at::embedding(token_embedding_, ids.to(device(), at::kLong));
  // Every layer has its own bias table but the same buckets: computed once.
  const at::Tensor buckets = relative_position_buckets(x.size(1), x.size(1), config_.num_buckets).to(device());
  for (size_t i = 0; i < blocks_.size(); ++i)
    x = block_forward(blocks_[i], x, key_mask, buckets, static_cast<int64_t>(i));
  return t5_rms_norm(x, final_norm_);
}

}  // namespace la::models

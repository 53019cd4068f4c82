#include "engine/models/s2v_dit/dit_weights.h"

#include <ATen/ATen.h>

namespace la::models {
namespace {

class Builder {
 public:
  Builder(const std::map<std::string, at::Tensor>& t, at::Device device, at::ScalarType dtype)
      : tensors_(t), device_(device), dtype_(dtype) {}

  at::Tensor get(const std::string& key, at::ScalarType dtype) const {
    return tensors_.at(key).to(device_, dtype).contiguous();
  }
  at::Tensor get(const std::string& key) const { return get(key, dtype_); }
  Linear linear(const std::string& prefix) const { return linear(prefix, dtype_); }
  Linear linear(const std::string& prefix, at::ScalarType dtype) const {
    Linear l;
    l.weight = get(prefix + ".weight", dtype);
    l.bias = get(prefix + ".bias", dtype);
    return l;
  }
  AttentionWeights attention(const std::string& prefix) const {
    return {linear(prefix + ".q"), linear(prefix + ".k"), linear(prefix + ".v"), linear(prefix + ".o"),
            get(prefix + ".norm_q.weight"), get(prefix + ".norm_k.weight")};
  }

 private:
  const std::map<std::string, at::Tensor>& tensors_;
  at::Device device_;
  at::ScalarType dtype_;
};

}  // namespace

DitWeights make_dit_weights(const std::map<std::string, at::Tensor>& tensors, const S2vDitConfig& cfg,
                            at::Device device, at::ScalarType dtype) {
  const Builder b(tensors, device, dtype);
  DitWeights w;
  w.patch_embedding = b.linear("patch_embedding");
  w.cond_encoder = b.linear("cond_encoder");
  w.frame_post = b.linear("frame_packer.proj");
  w.frame_2x = b.linear("frame_packer.proj_2x");
  w.frame_4x = b.linear("frame_packer.proj_4x");
  w.text_in = b.linear("text_embedding.0");
  w.text_out = b.linear("text_embedding.2");
  w.time_in = b.linear("time_embedding.0", at::kFloat);
  w.time_out = b.linear("time_embedding.2", at::kFloat);
  w.time_projection = b.linear("time_projection.1", at::kFloat);
  w.cond_type_embedding = b.get("trainable_cond_mask.weight");
  for (int64_t i = 0; i < cfg.num_layers; ++i) {
    const std::string p = "blocks." + std::to_string(i);
    BlockWeights blk;
    blk.modulation = b.get(p + ".modulation", at::kFloat);
    blk.self_attn = b.attention(p + ".self_attn");
    blk.cross_attn = b.attention(p + ".cross_attn");
    blk.norm3_weight = b.get(p + ".norm3.weight");
    blk.norm3_bias = b.get(p + ".norm3.bias");
    blk.ffn_in = b.linear(p + ".ffn.0");
    blk.ffn_out = b.linear(p + ".ffn.2");
    w.blocks.push_back(std::move(blk));
  }
  for (size_t j = 0; j < cfg.audio_inject_layers.size(); ++j) {
    const std::string n = std::to_string(j);
    w.injectors.push_back({b.attention("audio_injector.injector." + n),
                           b.linear("audio_injector.injector_adain_layers." + n + ".linear")});
  }
  w.head_modulation = b.get("head.modulation", at::kFloat);
  w.head = b.linear("head.head", at::kFloat);
  return w;
}

int64_t convert_to_fp8(DitWeights& w, const nn::Fp8Target& target) {
  std::vector<Linear*> linears;
  auto attention = [&](AttentionWeights& a) {
    for (Linear* l : {&a.q, &a.k, &a.v, &a.o}) linears.push_back(l);
  };
  for (auto& b : w.blocks) {
    attention(b.self_attn);
    attention(b.cross_attn);
    linears.push_back(&b.ffn_in);
    linears.push_back(&b.ffn_out);
  }
  for (auto& j : w.injectors) {
    attention(j.attn);
    linears.push_back(&j.adain);
  }
  // Every layer is checked before any is converted: a device or shape that
  // _scaled_mm cannot run fails here, at load, not at the first block.
  std::vector<std::array<int64_t, 2>> shapes;
  for (const Linear* l : linears) shapes.push_back({l->weight.size(0), l->weight.size(1)});
  if (const std::string why = nn::fp8_unsupported_reason(target, shapes); !why.empty())
    throw std::invalid_argument(why);
  for (Linear* l : linears) {
    l->fp8 = nn::quantize_fp8(l->weight);
    l->weight.reset();
  }
  return static_cast<int64_t>(linears.size());
}

}  // namespace la::models

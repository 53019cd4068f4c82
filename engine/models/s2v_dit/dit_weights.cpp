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

// Patch, pose, frame-pack, text and time embeddings: held by the part with block 0.
void add_stem(const Builder& b, DitWeights& w) {
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
}

int64_t bytes_of(const at::Tensor& t) { return t.defined() ? static_cast<int64_t>(t.nbytes()) : 0; }
int64_t bytes_of(const Linear& l) { return bytes_of(l.weight) + bytes_of(l.bias) + bytes_of(l.fp8.weight) + bytes_of(l.fp8.scale); }
int64_t bytes_of(const AttentionWeights& a) {
  return bytes_of(a.q) + bytes_of(a.k) + bytes_of(a.v) + bytes_of(a.o) + bytes_of(a.norm_q) + bytes_of(a.norm_k);
}

}  // namespace

DitWeights make_dit_weights(const std::map<std::string, at::Tensor>& tensors, const S2vDitConfig& cfg,
                            const DitLayerRange& range, at::Device device, at::ScalarType dtype) {
  const Builder b(tensors, device, dtype);
  const int64_t end = range.end_of(cfg);
  DitWeights w;
  if (range.begin == 0) add_stem(b, w);
  for (int64_t i = range.begin; i < end; ++i) {
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
    const int64_t layer = cfg.audio_inject_layers[j];
    if (layer < range.begin || layer >= end) continue;
    const std::string n = std::to_string(j);
    w.injectors.push_back({layer, b.attention("audio_injector.injector." + n),
                           b.linear("audio_injector.injector_adain_layers." + n + ".linear")});
  }
  if (end == cfg.num_layers) {
    w.head_modulation = b.get("head.modulation", at::kFloat);
    w.head = b.linear("head.head", at::kFloat);
  }
  return w;
}

int64_t dit_weight_bytes(const DitWeights& w) {
  int64_t n = 0;
  for (const Linear* l : {&w.patch_embedding, &w.cond_encoder, &w.frame_post, &w.frame_2x, &w.frame_4x, &w.text_in,
                          &w.text_out, &w.time_in, &w.time_out, &w.time_projection, &w.head})
    n += bytes_of(*l);
  n += bytes_of(w.cond_type_embedding) + bytes_of(w.head_modulation);
  for (const auto& blk : w.blocks)
    n += bytes_of(blk.modulation) + bytes_of(blk.self_attn) + bytes_of(blk.cross_attn) + bytes_of(blk.norm3_weight) +
         bytes_of(blk.norm3_bias) + bytes_of(blk.ffn_in) + bytes_of(blk.ffn_out);
  for (const auto& j : w.injectors) n += bytes_of(j.attn) + bytes_of(j.adain);
  return n;
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

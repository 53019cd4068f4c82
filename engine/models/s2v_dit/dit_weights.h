// The S2V DiT's tensors, named after their checkpoint keys, converted to the
// model's device and dtype once at load. Plain data: the forward functions in
// this directory read them, nothing writes them after loading.
#pragma once

#include <ATen/core/Tensor.h>
#include <map>
#include <string>
#include <vector>

#include "engine/models/s2v_dit_layout.h"
#include "engine/nn/fp8_linear.h"

namespace la::models {

struct Linear {
  at::Tensor weight;  // [out, in]; undefined when the layer runs in fp8
  at::Tensor bias;    // [out] (may be undefined)
  nn::Fp8Weight fp8;  // defined instead of `weight` for fp8 layers
};

// q, k, v, o with RMS q/k norms over the full width: WanSelfAttention /
// WanCrossAttention / the audio injectors all have this shape.
struct AttentionWeights {
  Linear q, k, v, o;
  at::Tensor norm_q, norm_k;  // [dim]
};

struct BlockWeights {
  at::Tensor modulation;  // [1, 6, dim], kept in float32 (the reference adds it in fp32)
  AttentionWeights self_attn, cross_attn;
  at::Tensor norm3_weight, norm3_bias;  // affine LayerNorm before cross-attention
  Linear ffn_in, ffn_out;               // ffn.0, ffn.2
};

struct AudioInjectorWeights {
  int64_t after_layer = 0;  // absolute index of the block it follows
  AttentionWeights attn;  // audio_injector.injector.{j}
  Linear adain;           // audio_injector.injector_adain_layers.{j}.linear: dim -> 2*dim (shift, scale)
};

// The tensors of one part of the DiT (DitLayerRange): `blocks` holds the
// range's blocks (index 0 = range.begin); the stem's members are undefined
// without block 0, the head's without the last block.
struct DitWeights {
  Linear patch_embedding, cond_encoder;  // Conv3d k = s = (1,2,2): weight [dim, 16, 1, 2, 2]
  Linear frame_post, frame_2x, frame_4x;  // frame_packer.proj / proj_2x / proj_4x
  Linear text_in, text_out;               // text_embedding.0 / .2
  Linear time_in, time_out, time_projection;  // float32 copies: the reference's autocast(fp32) island
  at::Tensor cond_type_embedding;         // trainable_cond_mask.weight [3, dim]
  std::vector<BlockWeights> blocks;
  std::vector<AudioInjectorWeights> injectors;  // one per entry of audio_inject_layers
  at::Tensor head_modulation;             // [1, 2, dim] float32
  Linear head;                            // float32 [out_dim * 4, dim]
};

// Builds the weights of `range` from `tensors` (checkpoint key -> tensor,
// every key of s2v_dit_tensor_specs(cfg) in the range present with its shape;
// the caller checks that), moved to `device` and `dtype` except the float32
// islands noted above.
DitWeights make_dit_weights(const std::map<std::string, at::Tensor>& tensors, const S2vDitConfig& cfg,
                            const DitLayerRange& range, at::Device device, at::ScalarType dtype);

// Bytes of every tensor `w` holds (fp8 weights and their scales included).
int64_t dit_weight_bytes(const DitWeights& w);

// Quantises the linears the reference's --fp8 converts (every block's self
// and cross q, k, v, o, ffn.0, ffn.2; every audio injector's q, k, v, o and
// AdaLN linear; not the text/time embeddings, the head or the audio encoder)
// and frees their full-precision weights. Returns how many were converted
// (460 at 14B). Throws std::invalid_argument with
// nn::fp8_unsupported_reason() when `target` cannot run them, before any is
// converted.
int64_t convert_to_fp8(DitWeights& w, const nn::Fp8Target& target);

}  // namespace la::models

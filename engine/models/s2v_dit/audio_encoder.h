// The DiT's audio encoder ("casual_audio_encoder" in the checkpoint): a
// learned softmax-free weighting of the 25 wav2vec2 hidden states, then causal
// 1-D convs (MotionEncoder_tc) giving per-frame local tokens and one global
// token. Runs in fp32 whatever the DiT dtype, as the reference's
// autocast(float32) region does. Immutable; safe to share between threads.
#pragma once

#include <ATen/core/Tensor.h>
#include <string>
#include <utility>

#include "engine/nn/conv.h"

namespace la::io { class WeightStore; }

namespace la::models {

struct AudioEncoderConfig {
  int64_t audio_dim;   // wav2vec2 width (the reference's "dim")
  int64_t dim;         // DiT width (the reference's "out_dim")
  int64_t num_tokens;  // local tokens per frame ("num_token"), plus one padding token
  int64_t num_layers;  // hidden states weighted (25)
};

class CausalAudioEncoder {
 public:
  // Reads "<prefix>weights", "<prefix>encoder.*" (prefix "casual_audio_encoder."
  // in the DiT, "" in the parity fixture), shape-checked.
  static CausalAudioEncoder from_store(io::WeightStore& store, const std::string& prefix,
                                       const AudioEncoderConfig& config, at::Device device);

  const AudioEncoderConfig& config() const { return config_; }
  // Bytes of the weights held.
  int64_t bytes() const;

  // features [B, num_layers, audio_dim, T] -> (global [B,T',1,dim], local
  // [B,T',num_tokens+1,dim]) with T' = ceil(ceil(T/2)/2), float32.
  // Throws std::invalid_argument on a wrong shape.
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& features) const;

  // The DiT's audio tokens for one block (reference CM:1093-1105): the
  // block's audio frames [B, layers, audio_dim, F] with its first frame
  // repeated `motion_frames` (73) times in front, encoded, and the first
  // `motion_latent_frames` (19) outputs dropped, leaving one output per latent
  // frame: (global [B,F/4,1,dim], local [B,F/4,num_tokens+1,dim]).
  std::pair<at::Tensor, at::Tensor> block_tokens(const at::Tensor& block, int64_t motion_frames,
                                                 int64_t motion_latent_frames) const;

 private:
  at::Tensor trunk(at::Tensor x) const;  // conv2 .. norm3 shared by both branches
  AudioEncoderConfig config_{};
  at::Tensor layer_weights_;  // [1, L, 1, 1]
  nn::Conv conv_local_, conv_global_, conv2_, conv3_, final_linear_;
  at::Tensor padding_tokens_;  // [1,1,1,dim]
};

}  // namespace la::models

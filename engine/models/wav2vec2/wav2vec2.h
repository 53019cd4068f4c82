// wav2vec2 with stable layer norm (XLSR-53 large, as the reference's
// wav2vec2-large-xlsr-53-english) returning all hidden states, loaded from the
// HF directory layout. Immutable after loading; safe to share between threads.
//
//   auto w2v = Wav2Vec2::load(ckpt + "/wav2vec2-large-xlsr-53-english", at::kCPU, at::kFloat);
//   at::Tensor h = w2v->hidden_states(samples);  // [B,N] -> [layers+1, B, T50, hidden]
#pragma once

#include <ATen/core/Tensor.h>
#include <memory>
#include <string>
#include <vector>

#include "engine/models/wav2vec2_layout.h"
#include "engine/nn/conv.h"

namespace la::io { class WeightStore; }

namespace la::models {

class Wav2Vec2 {
 public:
  // dir holds config.json and model.safetensors (or pytorch_model.bin). Throws io::CheckpointError.
  static std::shared_ptr<const Wav2Vec2> load(const std::string& dir, at::Device device, at::ScalarType dtype);
  static std::shared_ptr<const Wav2Vec2> from_store(io::WeightStore& store, const Wav2Vec2Config& config,
                                                    at::Device device, at::ScalarType dtype);

  const Wav2Vec2Config& config() const { return config_; }
  at::Device device() const { return projection_.weight.device(); }
  at::ScalarType dtype() const { return projection_.weight.scalar_type(); }

  // Frames the feature encoder makes of `samples` (50 Hz at 16 kHz): per conv
  // layer L <- floor((L - kernel) / stride) + 1; 0 if too short.
  int64_t frame_count(int64_t samples) const;

  // samples [B,N] (already normalised) -> [num_hidden_layers+1, B, T, hidden]:
  // index 0 is the input of layer 1 (after the positional conv), 1..L-1 the
  // outputs of layers 1..L-1, and L the final layer norm of layer L's output,
  // as HF's output_hidden_states with stable layer norm. Returned in the model
  // dtype. Throws std::invalid_argument if the audio gives no frame.
  at::Tensor hidden_states(const at::Tensor& samples) const;

 private:
  struct LayerNorm {
    at::Tensor weight, bias;
  };
  struct Layer {
    LayerNorm attn_norm, ffn_norm;
    nn::Conv q, k, v, out, ffn_in, ffn_out;  // linears as {weight, bias}
  };
  Wav2Vec2() = default;

  Wav2Vec2Config config_;
  std::vector<nn::Conv> feature_convs_;
  std::vector<LayerNorm> feature_norms_;
  LayerNorm projection_norm_;
  nn::Conv projection_;
  nn::Conv pos_conv_;  // weight already reconstructed from weight norm
  std::vector<Layer> layers_;
  LayerNorm final_norm_;
};

}  // namespace la::models

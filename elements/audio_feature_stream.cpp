#include "elements/audio_feature_stream.h"

#include <ATen/ATen.h>
#include <cmath>
#include <stdexcept>

namespace la::elements {

AudioFeatureStream::AudioFeatureStream(std::shared_ptr<const models::Wav2Vec2> model, FeatureMode mode,
                                       double context_seconds, double lookahead_seconds)
    : model_(std::move(model)), mode_(mode) {
  if (mode_ == FeatureMode::kStreaming) streaming_.emplace(model_, context_seconds, lookahead_seconds);
}

int64_t AudioFeatureStream::latency_samples() const {
  return streaming_ ? streaming_->latency_samples() : 0;
}

std::vector<at::Tensor> AudioFeatureStream::push(const float* samples, size_t count) {
  if (count == 0) return {};
  if (streaming_) {
    auto blocks = streaming_->push(samples, count);
    samples_ += static_cast<int64_t>(count);
    return blocks;
  }
  // Offline: non-finite samples are refused by offline_features at the end;
  // refusing them here reports the error at the buffer that carries them.
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(samples[i])) throw std::invalid_argument("audio holds NaN or infinite samples");
  utterance_.insert(utterance_.end(), samples, samples + count);
  samples_ += static_cast<int64_t>(count);
  return {};
}

std::vector<at::Tensor> AudioFeatureStream::offline_blocks() {
  const auto n = static_cast<int64_t>(utterance_.size());
  const int64_t blocks = (n + audio::kSamplesPerBlock - 1) / audio::kSamplesPerBlock;
  std::vector<at::Tensor> out;
  if (model_->frame_count(n) < 1) {
    // Too short for one wav2vec2 frame (under 25 ms): silence, as streaming
    // mode gives for a window with no frame.
    const auto& c = model_->config();
    for (int64_t b = 0; b < blocks; ++b)
      out.push_back(at::zeros({c.num_hidden_layers + 1, c.hidden_size, audio::kFramesPerBlock},
                              at::TensorOptions().dtype(at::kFloat).device(model_->device())));
    return out;
  }
  const at::Tensor samples = at::from_blob(utterance_.data(), {n}, at::kFloat);
  const at::Tensor emb = audio::offline_features(*model_, samples);
  for (int64_t b = 0; b < blocks; ++b) out.push_back(audio::offline_block(emb, b));
  return out;
}

std::vector<at::Tensor> AudioFeatureStream::finish() {
  std::vector<at::Tensor> out = streaming_ ? streaming_->finish() : offline_blocks();
  reset();
  return out;
}

void AudioFeatureStream::reset() {
  if (streaming_) streaming_->reset();
  utterance_.clear();
  utterance_.shrink_to_fit();
  samples_ = 0;
}

}  // namespace la::elements

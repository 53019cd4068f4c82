// laaudiofeat's work without GStreamer: 16 kHz mono samples in, feature
// blocks [layers, channels, 12] out, in the element's two modes
// (engine/audio/audio_features.h):
//   streaming: a block as soon as its lookahead has arrived;
//   offline:   nothing until finish(), then every block of the utterance with
//              the reference's numerics.
// Either way finish() ends the utterance: a partial last block is padded with
// zero features past the audio, and the stream starts over empty. One
// utterance of N samples gives ceil(N / 7680) blocks.
#pragma once

#include <ATen/core/Tensor.h>
#include <memory>
#include <optional>
#include <vector>

#include "engine/audio/audio_features.h"

namespace la::elements {

enum class FeatureMode { kStreaming, kOffline };

class AudioFeatureStream {
 public:
  AudioFeatureStream(std::shared_ptr<const models::Wav2Vec2> model, FeatureMode mode, double context_seconds,
                     double lookahead_seconds);

  // Blocks that became ready (none in offline mode). Throws
  // std::invalid_argument for non-finite samples.
  std::vector<at::Tensor> push(const float* samples, size_t count);
  // The remaining blocks; the stream is empty afterwards.
  std::vector<at::Tensor> finish();
  // Forgets everything since the last reset (flush).
  void reset();
  // No sample since the last reset or finish.
  bool empty() const { return samples_ == 0; }
  // Samples between a block's first sample arriving and the block leaving
  // (streaming only: 7680 + lookahead rounded to the 320-sample hop).
  int64_t latency_samples() const;
  FeatureMode mode() const { return mode_; }

 private:
  std::vector<at::Tensor> offline_blocks();

  std::shared_ptr<const models::Wav2Vec2> model_;
  FeatureMode mode_;
  std::optional<audio::StreamingFeatures> streaming_;
  std::vector<float> utterance_;  // offline: every sample so far
  int64_t samples_ = 0;
};

}  // namespace la::elements

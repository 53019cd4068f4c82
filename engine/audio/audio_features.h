// Audio features for the DiT, one [25, C, 12] block per 0.48 s (12 video
// frames at 25 fps), in two modes:
//
// - offline: the reference's numerics for a whole utterance: whole-utterance
//   normalisation, wav2vec2 over the whole signal (bidirectional attention),
//   50->30 Hz resampling, one 30 Hz frame per video frame, zeros past the end.
// - streaming: for live input. Each block is computed from a window of
//   `context` seconds before it and `lookahead` seconds after it, normalised
//   with running statistics of everything heard so far; a block is ready as
//   soon as its lookahead has arrived, so latency = 0.48 s + lookahead.
//   Memory is bounded by the window. docs/text-and-audio.md tabulates its
//   deviation from offline.
#pragma once

#include <ATen/core/Tensor.h>
#include <deque>
#include <memory>
#include <vector>

#include "engine/models/wav2vec2/wav2vec2.h"

namespace la::audio {

constexpr int64_t kSampleRate = 16000;
constexpr int64_t kVideoFps = 25;
constexpr int64_t kFramesPerBlock = 12;
constexpr int64_t kSamplesPerBlock = kSampleRate * kFramesPerBlock / kVideoFps;  // 7680

// Zero mean, unit variance over the whole signal (population variance, +1e-7),
// as HF's Wav2Vec2FeatureExtractor. samples [N] float.
at::Tensor normalise_utterance(const at::Tensor& samples);

// samples [N] at 16 kHz -> audio_emb [layers, C, frames] (float32), frames a
// multiple of 48 as the reference pads, the 30 Hz frame of each video frame
// or zeros past the audio. Throws std::invalid_argument for empty or
// non-finite audio.
at::Tensor offline_features(const models::Wav2Vec2& model, const at::Tensor& samples);

// offline_features after the model: hidden [layers, T50, C] (50 Hz) -> audio_emb [layers, C, frames]
// (30 Hz resampling, one bucket per video frame).
at::Tensor offline_features_from_hidden(const at::Tensor& hidden);

// Where StreamingFeatures reads video frame `video_frame`'s audio, in 50 Hz frames from the
// stream's start: offline's 25 -> 30 Hz bucket (1.2 i, rounded half to even) mapped back with the
// scale 5/3 while the stream runs (the utterance's length, which offline's align-corners scale
// (T50-1)/(T30-1) needs, is unknown), or with that exact scale for blocks completed at the end
// (`utterance_frames50` > 0, T50).
double streaming_frame_position_50hz(int64_t video_frame, int64_t utterance_frames50 = 0);

// Block b of an offline audio_emb: [layers, C, 12], zeros past its end.
at::Tensor offline_block(const at::Tensor& audio_emb, int64_t block);

class StreamingFeatures {
 public:
  StreamingFeatures(std::shared_ptr<const models::Wav2Vec2> model, double context_seconds, double lookahead_seconds);

  // Appends samples; returns every block that became ready, in order, each
  // [layers, C, 12] float32 on the model's device (never copied to the host).
  // Throws std::invalid_argument for non-finite samples.
  std::vector<at::Tensor> push(const float* samples, size_t count);
  // End of stream: the remaining blocks (a partial last block is padded with
  // zero features past the audio, like offline).
  std::vector<at::Tensor> finish();
  void reset();

  int64_t blocks_out() const { return next_block_; }
  int64_t latency_samples() const { return kSamplesPerBlock + lookahead_; }

 private:
  at::Tensor compute_block(int64_t block, bool at_end);

  std::shared_ptr<const models::Wav2Vec2> model_;
  int64_t context_, lookahead_;  // in samples, multiples of the 320-sample hop
  std::vector<float> buffer_;    // samples from buffer_start_ on
  int64_t buffer_start_ = 0;     // stream sample index of buffer_[0]
  int64_t total_ = 0;            // samples pushed
  double sum_ = 0, sum_sq_ = 0;  // running statistics
  int64_t next_block_ = 0;
  // A block is normalised with the statistics of the samples up to the point
  // where it becomes ready ((b+1)*7680 + lookahead), recorded as the samples
  // pass it, so the features do not depend on how the audio was cut into
  // buffers. stats_block_: the next block whose point is still to come.
  struct RunningStats {
    double sum, sum_sq;
  };
  std::deque<RunningStats> ready_stats_;
  int64_t stats_block_ = 0;
  int64_t ready_point(int64_t block) const { return (block + 1) * kSamplesPerBlock + lookahead_; }
};

}  // namespace la::audio

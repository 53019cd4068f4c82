#include "engine/audio/audio_features.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <cmath>
#include <stdexcept>

#include "engine/audio/frame_alignment.h"

namespace la::audio {
namespace {

constexpr int64_t kHop = 320;  // wav2vec2 samples per 50 Hz frame
constexpr int64_t kBatchFrames = 48;

void require_finite(const at::Tensor& x) {
  if (!at::isfinite(x).all().item<bool>()) throw std::invalid_argument("audio holds NaN or infinite samples");
}

int64_t hop_multiple(double seconds) {
  if (seconds < 0) throw std::invalid_argument("context and lookahead must not be negative");
  return static_cast<int64_t>(std::llround(seconds * kSampleRate / kHop)) * kHop;
}

}  // namespace

// The 5/3 used while the stream runs is the limit of offline's (T50-1)/(N30-1). The two place a
// frame up to 7/3 50 Hz frames (46.7 ms; 45 ms measured over 1-20 s utterances against
// offline_features_from_hidden, unit-audio-features) apart near the end of an utterance, less
// before: a bound that does not grow with the length.
double streaming_frame_position_50hz(int64_t video_frame, int64_t utterance_frames50) {
  double scale = 50.0 / 30.0;
  if (utterance_frames50 > 0) {
    const auto frames30 = static_cast<int64_t>(static_cast<double>(utterance_frames50) / 50.0 * 30.0);
    if (frames30 > 1) scale = static_cast<double>(utterance_frames50 - 1) / static_cast<double>(frames30 - 1);
  }
  return std::nearbyint(1.2 * static_cast<double>(video_frame)) * scale;
}

at::Tensor normalise_utterance(const at::Tensor& samples) {
  const at::Tensor x = samples.to(at::kFloat);
  const at::Tensor mean = x.mean();
  const at::Tensor var = (x - mean).pow(2).mean();
  return (x - mean) / at::sqrt(var + 1e-7);
}

at::Tensor offline_features(const models::Wav2Vec2& model, const at::Tensor& samples) {
  c10::InferenceMode inference;
  if (samples.dim() != 1 || samples.numel() == 0) throw std::invalid_argument("audio is empty");
  require_finite(samples);
  // The reference feeds the normalised waveform in the model dtype (bf16 on GPU).
  return offline_features_from_hidden(model.hidden_states(normalise_utterance(samples).unsqueeze(0)).select(1, 0));
}

at::Tensor offline_features_from_hidden(const at::Tensor& hidden) {
  const at::Tensor at30 = resample_linear(hidden, 50, 30).to(at::kFloat);  // [L,N30,C]
  const auto b = bucket_by_frame(at30, kVideoFps, kBatchFrames, 0);          // [F,L,C]
  return b.buckets.permute({1, 2, 0}).contiguous();
}

at::Tensor offline_block(const at::Tensor& audio_emb, int64_t block) {
  const int64_t start = block * kFramesPerBlock;
  at::Tensor out = at::zeros({audio_emb.size(0), audio_emb.size(1), kFramesPerBlock}, audio_emb.options());
  const int64_t n = std::min<int64_t>(kFramesPerBlock, std::max<int64_t>(0, audio_emb.size(2) - start));
  if (n > 0) out.slice(2, 0, n).copy_(audio_emb.slice(2, start, start + n));
  return out;
}

StreamingFeatures::StreamingFeatures(std::shared_ptr<const models::Wav2Vec2> model, double context_seconds,
                                     double lookahead_seconds)
    : model_(std::move(model)), context_(hop_multiple(context_seconds)), lookahead_(hop_multiple(lookahead_seconds)) {}

void StreamingFeatures::reset() {
  buffer_.clear();
  buffer_start_ = total_ = next_block_ = 0;
  sum_ = sum_sq_ = 0;
  ready_stats_.clear();
  stats_block_ = 0;
}

at::Tensor StreamingFeatures::compute_block(int64_t block, bool at_end) {
  // Statistics up to the block's ready point when the audio reached it (the
  // front of ready_stats_ is this block's: blocks are computed in order), else
  // (a last block at the end of the audio) over everything.
  double sum = sum_, sum_sq = sum_sq_;
  auto n = static_cast<double>(total_);
  if (stats_block_ > block) {
    sum = ready_stats_.front().sum, sum_sq = ready_stats_.front().sum_sq;
    n = static_cast<double>(ready_point(block));
    ready_stats_.pop_front();
  }
  const int64_t block_start = block * kSamplesPerBlock;
  const int64_t win_start = std::max<int64_t>(0, block_start - context_);
  const int64_t win_end = std::min<int64_t>(total_, block_start + kSamplesPerBlock + lookahead_);
  const int64_t layers = model_->config().num_hidden_layers + 1, dim = model_->config().hidden_size;
  // On the model's device: the 12 frame copies below stay there (no
  // device->host copy per frame; the block leaves the device only if the
  // element's output is system memory).
  at::Tensor out = at::zeros({layers, dim, kFramesPerBlock}, at::TensorOptions().dtype(at::kFloat).device(model_->device()));
  if (model_->frame_count(win_end - win_start) < 1) return out;  // nothing audible yet: silence

  const double mean = sum / n;
  const double var = std::max(0.0, sum_sq / n - mean * mean);
  at::Tensor window = at::from_blob(buffer_.data() + (win_start - buffer_start_), {win_end - win_start}, at::kFloat);
  window = (window - mean) / std::sqrt(var + 1e-7);
  const at::Tensor hidden = model_->hidden_states(window.unsqueeze(0)).select(1, 0).to(at::kFloat);  // [L,T,C]
  const int64_t frames = hidden.size(1);
  const int64_t total_frames50 = model_->frame_count(total_);
  const auto total_frames30 = static_cast<int64_t>(static_cast<double>(total_frames50) / 50.0 * 30.0);
  for (int64_t i = 0; i < kFramesPerBlock; ++i) {
    const int64_t video_frame = block * kFramesPerBlock + i;
    // Past the end of the audio: zeros, as offline.
    if (at_end && std::nearbyint(1.2 * static_cast<double>(video_frame)) >= total_frames30) continue;
    const double at = streaming_frame_position_50hz(video_frame, at_end ? total_frames50 : 0);
    const double pos = std::clamp(at - static_cast<double>(win_start / kHop), 0.0, static_cast<double>(frames - 1));
    const auto lo = static_cast<int64_t>(pos);
    const int64_t hi = std::min(lo + 1, frames - 1);
    const double w = pos - static_cast<double>(lo);
    out.select(2, i).copy_(hidden.select(1, lo) * (1 - w) + hidden.select(1, hi) * w);
  }
  return out;
}

std::vector<at::Tensor> StreamingFeatures::push(const float* samples, size_t count) {
  c10::InferenceMode inference;
  for (size_t i = 0; i < count; ++i)
    if (!std::isfinite(samples[i])) throw std::invalid_argument("audio holds NaN or infinite samples");
  for (size_t i = 0; i < count; ++i) {
    sum_ += samples[i];
    sum_sq_ += static_cast<double>(samples[i]) * samples[i];
    if (total_ + static_cast<int64_t>(i) + 1 == ready_point(stats_block_)) {
      ready_stats_.push_back({sum_, sum_sq_});
      ++stats_block_;
    }
  }
  buffer_.insert(buffer_.end(), samples, samples + count);
  total_ += static_cast<int64_t>(count);
  std::vector<at::Tensor> ready;
  while (total_ >= (next_block_ + 1) * kSamplesPerBlock + lookahead_) {
    ready.push_back(compute_block(next_block_, false));
    ++next_block_;
    // Keep only what the next window can reach back to.
    const int64_t keep_from = std::max<int64_t>(0, next_block_ * kSamplesPerBlock - context_);
    if (keep_from > buffer_start_) {
      buffer_.erase(buffer_.begin(), buffer_.begin() + (keep_from - buffer_start_));
      buffer_start_ = keep_from;
    }
  }
  return ready;
}

std::vector<at::Tensor> StreamingFeatures::finish() {
  c10::InferenceMode inference;
  std::vector<at::Tensor> ready;
  while (next_block_ * kSamplesPerBlock < total_) {
    ready.push_back(compute_block(next_block_, true));
    ++next_block_;
  }
  return ready;
}

}  // namespace la::audio

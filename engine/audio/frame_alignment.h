// Aligning wav2vec2 features (50 Hz) to video frames, exactly as the
// reference does (wan_2_2/modules/s2v/audio_encoder.py): linear resampling to
// 30 Hz, then one bucket of features per 25 fps video frame.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>
#include <optional>
#include <vector>

namespace la::audio {

// features [B,T,C] at input_fps -> [B,L,C] at output_fps, linear with
// align_corners; L = output_len or int(T / input_fps * output_fps).
at::Tensor resample_linear(const at::Tensor& features, double input_fps, double output_fps,
                           std::optional<int64_t> output_len = std::nullopt);

// The frame of a sequence at original_fps nearest to each of num_sample
// instants spaced 1/target_fps apart from frame fixed_start (numpy's
// round-half-to-even), clipped to the sequence. Throws std::invalid_argument if
// the instants last longer than the sequence.
std::vector<int64_t> sample_indices(int64_t original_fps, int64_t total_frames, int64_t target_fps,
                                    int64_t num_sample, int64_t fixed_start);

struct FrameBuckets {
  at::Tensor buckets;  // [frames, L, C*(2m+1)]: per video frame, the features of 2m+1 neighbours
  int64_t num_repeat;  // how many batches of batch_frames the audio spans
};

// audio_embed [L,T,C] at video_rate Hz -> buckets for video frames at fps,
// padded with zeros to a whole number of batch_frames (the reference's
// get_audio_embed_bucket_fps).
FrameBuckets bucket_by_frame(const at::Tensor& audio_embed, int64_t fps, int64_t batch_frames, int64_t m,
                             int64_t video_rate = 30);

}  // namespace la::audio

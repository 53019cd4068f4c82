#include "engine/audio/frame_alignment.h"

#include <ATen/ATen.h>
#include <cmath>
#include <stdexcept>
#include <string>

namespace la::audio {

at::Tensor resample_linear(const at::Tensor& features, double input_fps, double output_fps,
                           std::optional<int64_t> output_len) {
  if (features.dim() != 3) throw std::invalid_argument("features must be [B,T,C]");
  const int64_t len = output_len ? *output_len
                                 : static_cast<int64_t>(static_cast<double>(features.size(1)) / input_fps * output_fps);
  if (len < 1) throw std::invalid_argument("resampled length would be " + std::to_string(len));
  return at::upsample_linear1d(features.transpose(1, 2), {len}, /*align_corners=*/true).transpose(1, 2);
}

std::vector<int64_t> sample_indices(int64_t original_fps, int64_t total_frames, int64_t target_fps,
                                    int64_t num_sample, int64_t fixed_start) {
  const double duration = static_cast<double>(num_sample) / static_cast<double>(target_fps);
  if (duration > static_cast<double>(total_frames) / static_cast<double>(original_fps))
    throw std::invalid_argument("requested duration exceeds the sequence");
  const double start = static_cast<double>(fixed_start) / static_cast<double>(original_fps);
  const double step = ((start + duration) - start) / static_cast<double>(num_sample);  // numpy linspace, no endpoint
  std::vector<int64_t> out;
  out.reserve(num_sample);
  for (int64_t i = 0; i < num_sample; ++i) {
    const double t = static_cast<double>(i) * step + start;
    const auto frame = static_cast<int64_t>(std::nearbyint(t * static_cast<double>(original_fps)));  // half to even
    out.push_back(std::min(std::max<int64_t>(frame, 0), total_frames - 1));
  }
  return out;
}

FrameBuckets bucket_by_frame(const at::Tensor& audio_embed, int64_t fps, int64_t batch_frames, int64_t m,
                             int64_t video_rate) {
  if (audio_embed.dim() != 3 || audio_embed.size(1) < 1) throw std::invalid_argument("audio_embed must be [L,T>0,C]");
  const int64_t layers = audio_embed.size(0), frames = audio_embed.size(1), dim = audio_embed.size(2);
  const double scale = static_cast<double>(video_rate) / static_cast<double>(fps);
  const int64_t num_repeat = static_cast<int64_t>(static_cast<double>(frames) / (static_cast<double>(batch_frames) * scale)) + 1;
  const int64_t num_buckets = num_repeat * batch_frames;
  const int64_t padded = static_cast<int64_t>(std::ceil(static_cast<double>(num_repeat * batch_frames) /
                                                        static_cast<double>(fps) * static_cast<double>(video_rate)));
  const auto centres = sample_indices(video_rate, padded, fps, num_buckets, 0);
  const int64_t stride = video_rate / fps;

  at::Tensor out = at::zeros({num_buckets, layers, dim * (2 * m + 1)}, audio_embed.options());
  for (int64_t i = 0; i < num_buckets; ++i) {
    const int64_t c = centres[i];
    if (c >= frames) continue;  // past the audio: zeros
    std::vector<int64_t> chosen;
    for (int64_t j = c - m * stride; j < c + (m + 1) * stride; j += stride)
      chosen.push_back(std::min(std::max<int64_t>(j, 0), frames - 1));
    const at::Tensor idx = at::tensor(chosen, at::kLong).to(audio_embed.device());
    out[i] = audio_embed.index_select(1, idx).reshape({layers, -1});
  }
  return {out, num_repeat};
}

}  // namespace la::audio

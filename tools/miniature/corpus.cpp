#include "tools/miniature/corpus.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>

#include "engine/audio/audio_features.h"
#include "tools/miniature/speech_corpus.h"

namespace la::miniature {

std::vector<TrainingClip> make_corpus(const std::shared_ptr<const models::Wav2Vec2>& wav2vec2, uint64_t seed, int count, int sentences,
                                      bool held_out) {
  std::vector<TrainingClip> clips;
  for (int i = 0; i < count; ++i) {
    SpeechClip speech = make_speech_clip(seed + static_cast<uint64_t>(i), held_out, sentences);
    TrainingClip c;
    c.description = speech.description;
    c.samples = std::move(speech.samples);
    audio::StreamingFeatures stream(wav2vec2, 2.0, 0.16);
    std::vector<at::Tensor> blocks = stream.push(c.samples.data(), c.samples.size());
    for (auto& b : stream.finish()) blocks.push_back(b);
    const at::Tensor offline = audio::offline_features(*wav2vec2, at::from_blob(c.samples.data(),
                                                       {static_cast<int64_t>(c.samples.size())}, at::kFloat));
    c.blocks = std::min<int64_t>(static_cast<int64_t>(blocks.size()), offline.size(2) / kFramesPerBlock);
    for (int64_t b = 0; b < c.blocks; ++b) {
      // Out of inference mode, so autograd may save them.
      c.streaming_features.push_back(blocks[b].clone());
      c.offline_features.push_back(audio::offline_block(offline, b).clone());
    }
    c.poses = poses_from_envelope(loudness_envelope(c.samples.data(), static_cast<int64_t>(c.samples.size()),
                                                    c.blocks * kFramesPerBlock));
    clips.push_back(std::move(c));
  }
  return clips;
}

at::Tensor clip_video(const TrainingClip& clip, int64_t first, int64_t count, int64_t size) {
  return draw_video(std::vector<FacePose>(clip.poses.begin() + first, clip.poses.begin() + first + count), size);
}

void encode_latents(const models::WanVae& vae, TrainingClip& clip, int64_t size) {
  c10::NoGradGuard no_grad;
  const at::Tensor video = clip_video(clip, 0, clip.blocks * kFramesPerBlock, size);
  const at::Tensor primed = at::cat({video.narrow(1, 0, 1), video}, 1);
  clip.latents = vae.encode(primed).narrow(1, 1, clip.blocks * kLatentFramesPerBlock).contiguous();
}

at::Tensor reference_image_rgb(int64_t size) {
  const at::Tensor face = draw_face(FacePose{}, size);
  return ((face + 1) * 127.5).round().clamp(0, 255).to(at::kByte).permute({1, 2, 0}).contiguous();
}

}  // namespace la::miniature

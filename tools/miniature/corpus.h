// The miniature's training corpus: speech clips (speech_corpus.h) with the
// face that says them (talking_face.h), the audio features the elements
// would compute for them, and, once the VAE is trained, the face video's
// latents aligned block for block with the features.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/models/wan_vae/wan_vae.h"
#include "engine/models/wav2vec2/wav2vec2.h"
#include "tools/miniature/talking_face.h"

namespace la::miniature {

constexpr int64_t kFramesPerBlock = 12;      // video frames per latent block (0.48 s)
constexpr int64_t kLatentFramesPerBlock = 3;

struct TrainingClip {
  std::string description;
  std::vector<float> samples;      // 16 kHz
  std::vector<FacePose> poses;     // one per video frame, blocks * 12
  int64_t blocks = 0;
  // Per block [25, audio_dim, 12]: laaudiofeat's two modes (streaming with its
  // default 2 s context and 0.16 s lookahead, and offline).
  std::vector<at::Tensor> streaming_features, offline_features;
  at::Tensor latents;              // [16, 3 * blocks, h, w], filled by encode_latents
};

// `count` clips of `sentences` sentences each, clip i from seed + i.
std::vector<TrainingClip> make_corpus(const std::shared_ptr<const models::Wav2Vec2>& wav2vec2, uint64_t seed, int count, int sentences,
                                      bool held_out);

// The face video of frames [first, first + count) of a clip.
at::Tensor clip_video(const TrainingClip& clip, int64_t first, int64_t count, int64_t size);

// The latents of the whole clip, block b's three latent frames covering its
// video frames 12b..12b+11: the video is encoded behind a copy of its first
// frame (the causal VAE's lone first latent), which is then dropped.
void encode_latents(const models::WanVae& vae, TrainingClip& clip, int64_t size);

// The neutral face (mouth closed, head at rest) as the elements' reference image.
at::Tensor reference_image_rgb(int64_t size);  // uint8 [size, size, 3]

}  // namespace la::miniature

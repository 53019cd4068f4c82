// The options of one stream's generation (GenerationSession, parallel::DitPipeline).
#pragma once

#include <cstdint>
#include <optional>

namespace la::session {

struct SessionOptions {
  int steps = 4;                  // denoising steps (the release is distilled for 4)
  uint64_t seed = 42;             // clip noise uses seed + clip index; rd draws use seed
  int64_t blocks_per_clip = 4;    // KV window in blocks, and the noise unit (the reference's clip)
  int64_t frames_per_block = 3;   // latent frames per block
  // After the first clip, the first latent frame of block 0 becomes the sink's
  // reference frame (the reference's multi-GPU pipeline does this; its single-GPU
  // script only with --enable_online_decode).
  bool refresh_sink_after_first_clip = true;
  // Reference-frame RoPE offset: drawn U{4..30} per step from the session's own
  // seeded RNG (the reference uses an unseeded global RNG), or fixed.
  std::optional<int> fixed_rd;
  // Absolute latent-frame position of the stream's first block (a multiple of
  // frames_per_block); positions are unbounded.
  int64_t first_frame = 0;
};

}  // namespace la::session

// What a stream's generator draws and checks before the DiT runs, shared by
// GenerationSession (one device) and parallel::DitPipeline (several), so both
// give the same stream for the same seed and refuse the same inputs with the
// same words.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>
#include <functional>
#include <optional>

#include "engine/models/s2v_dit_layout.h"
#include "engine/session/session_options.h"

namespace la::session {

// Throws std::invalid_argument for a latent size the DiT cannot patch or bad options.
void check_session_options(const SessionOptions& options, int64_t latent_h, int64_t latent_w);
// umT5 states [1..text_len, text_dim]; throws std::invalid_argument.
void check_prompt_states(const models::S2vDitConfig& cfg, const at::Tensor& states);
// Reference latent [in_dim, 1, h, w] and motion latents [in_dim, F, h, w]; throws std::invalid_argument.
void check_reference(int64_t in_dim, int64_t latent_h, int64_t latent_w, const at::Tensor& ref_latent,
                     const at::Tensor& motion_latents);

// The rolling-sink offsets rd, one per denoising step: U{4..30} from a
// splitmix64 generator seeded with the session's seed (the same sequence on
// every platform), or options.fixed_rd, or a test's source.
class RdSequence {
 public:
  explicit RdSequence(const SessionOptions& options) : seed_(options.seed), fixed_(options.fixed_rd), state_(seed_) {}
  int next();
  void restart() { state_ = seed_; }
  void set_source(std::function<int()> source) { source_ = std::move(source); }

 private:
  uint64_t seed_;
  std::optional<int> fixed_;
  uint64_t state_;
  std::function<int()> source_;
};

// The noise of clip `clip`, [channels, frames, h, w]: drawn on the CPU with
// seed + clip (the same stream on every device), or from `source` (tests),
// then moved to `device` in `dtype`. Throws std::invalid_argument for a
// source's wrong shape.
at::Tensor clip_noise(const std::function<at::Tensor(int64_t)>& source, uint64_t seed, int64_t clip,
                      int64_t channels, int64_t frames, int64_t latent_h, int64_t latent_w, at::Device device,
                      at::ScalarType dtype);

}  // namespace la::session

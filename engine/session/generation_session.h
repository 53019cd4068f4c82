// Per-stream generation state of the S2V DiT (whisper.cpp's model vs state
// split: the DiT is shared and immutable, a session is one stream):
//
//   GenerationSession s(dit, latent_h, latent_w, {.seed = 7});
//   s.set_prompt(umt5_states);                 // [L, text_dim]
//   s.set_reference(ref_latent, motion_latents);
//   for (;;) { at::Tensor latents = s.next_block(audio_block); ... }  // [25, C, 12] -> [16, 3, h, w]
//
// It holds one KV ring per denoising step (the current block plus the
// previous blocks_per_clip - 1 blocks), the sink (cond) cache, the prompt's
// cross-attention K/V, the clip noise and the rolling-sink RNG. Everything is
// allocated up front, so memory does not grow with the stream's length.
// Deterministic: the same seed, inputs and model give bit-identical latents.
// Not thread-safe: one thread drives a session.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/sampler/flow_match.h"
#include "engine/session/session_options.h"
#include "engine/session/stream_inputs.h"

namespace la::session {

class GenerationSession {
 public:
  // Throws std::invalid_argument for a latent size the DiT cannot patch or bad options.
  GenerationSession(std::shared_ptr<const models::S2vDit> dit, int64_t latent_h, int64_t latent_w,
                    SessionOptions options = {});

  // umT5 states [L, text_dim]; takes effect at the next block (re-runs the sink
  // prefill, whose blocks attend to the text, from the sink's current
  // reference frame). Any number of times, at any block.
  void set_prompt(const at::Tensor& text_states);
  // Reference latent [16, 1, h, w] and motion latents [16, F, h, w] (the
  // reference pipeline uses the VAE encoding of the image repeated 73 times);
  // takes effect at the next block and stays the sink's reference frame for
  // the rest of the stream: it replaces a refreshed sink, and one given inside
  // the first clip cancels the refresh at its end. Any number of times.
  void set_reference(const at::Tensor& ref_latent, const at::Tensor& motion_latents);

  // Generates the next block from its audio features [25, audio_dim, 12]
  // (optional pose latents [cond_dim, 3, h, w]): latents [16, 3, h, w] in the
  // DiT's dtype, on its device. Throws std::invalid_argument on bad shapes or
  // std::logic_error without a prompt and a reference.
  at::Tensor next_block(const at::Tensor& audio, const at::Tensor& pose = {});

  // Applies a pending prompt/reference now (the sink prefill), instead of at
  // the start of the next block. Throws like next_block without them.
  void prepare() { apply_pending(); }

  // Starts a new stream: position 0, fresh KV rings and RNG, the last given
  // reference (the refreshed sink is dropped).
  void reset();

  int64_t blocks_done() const { return block_; }
  int64_t latent_height() const { return h_; }
  int64_t latent_width() const { return w_; }
  // Bytes held by the KV rings and the sink cache (constant once allocated).
  int64_t cache_bytes() const;

  // Test hooks: clip noise [16, frames_per_block * blocks_per_clip, h, w] for
  // a clip index, and the rd sequence.
  void set_noise_source(std::function<at::Tensor(int64_t clip)> source) { noise_source_ = std::move(source); }
  void set_rd_source(std::function<int()> source) { rd_.set_source(std::move(source)); }
  // Called after every denoising step with the step index and the new latents
  // (benchmarks time steps with it; it may synchronise the device).
  void set_step_observer(std::function<void(int step, const at::Tensor& x)> observer) {
    step_observer_ = std::move(observer);
  }

 private:
  void apply_pending();
  void prefill(const at::Tensor& ref_latent);

  std::shared_ptr<const models::S2vDit> dit_;
  int64_t h_, w_;
  SessionOptions options_;
  sampler::FlowMatchSchedule schedule_;
  std::vector<models::StepKvCache> kv_;  // one per denoising step
  models::PromptCache prompt_;
  models::CondCache sink_;
  at::Tensor ref_latent_, motion_latents_, pending_text_, pending_ref_, pending_motion_;
  at::Tensor noise_;  // the current clip's noise
  int64_t noise_clip_ = -1;
  // Block 0's first clean frame, which becomes the sink's reference frame
  // after the first clip; dropped (no refresh) when the image changes first.
  at::Tensor refreshed_ref_;
  at::Tensor sink_ref_;  // the reference frame the current sink was prefilled from
  int64_t block_ = 0;
  RdSequence rd_;
  std::function<at::Tensor(int64_t)> noise_source_;
  std::function<void(int, const at::Tensor&)> step_observer_;
};

}  // namespace la::session

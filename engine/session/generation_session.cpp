#include "engine/session/generation_session.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <stdexcept>

#include "engine/session/stream_inputs.h"

namespace la::session {

GenerationSession::GenerationSession(std::shared_ptr<const models::S2vDit> dit, int64_t latent_h, int64_t latent_w,
                                     SessionOptions options)
    : dit_(std::move(dit)), h_(latent_h), w_(latent_w), options_(options), rd_(options) {
  if (!dit_) throw std::invalid_argument("GenerationSession needs a DiT");
  check_session_options(options_, h_, w_);
  schedule_ = sampler::flow_match_schedule(options_.steps);  // validates steps
  const int64_t block_tokens = options_.frames_per_block * dit_->frame_tokens(h_, w_);
  for (int i = 0; i < options_.steps; ++i) kv_.push_back(dit_->make_kv_cache(block_tokens * options_.blocks_per_clip));
}

void GenerationSession::set_prompt(const at::Tensor& text_states) {
  check_prompt_states(dit_->config(), text_states);
  pending_text_ = text_states;
}

void GenerationSession::set_reference(const at::Tensor& ref_latent, const at::Tensor& motion_latents) {
  check_reference(dit_->config().in_dim, h_, w_, ref_latent, motion_latents);
  pending_ref_ = ref_latent;
  pending_motion_ = motion_latents;
}

void GenerationSession::apply_pending() {
  bool prefill_needed = false;
  if (pending_text_.defined()) {
    prompt_ = dit_->encode_prompt(pending_text_);
    pending_text_.reset();
    prefill_needed = true;
  }
  if (pending_ref_.defined()) {
    ref_latent_ = pending_ref_;
    motion_latents_ = pending_motion_;
    pending_ref_.reset();
    pending_motion_.reset();
    // A new image replaces the refreshed sink, and inside the first clip it
    // cancels the refresh due at its end: block 0's frame shows the old image.
    refreshed_ref_.reset();
    sink_ref_ = ref_latent_;
    prefill_needed = true;
  }
  if (prompt_.layers.empty() || !ref_latent_.defined())
    throw std::logic_error("generation needs a prompt and a reference image before the first block");
  // From the sink's current reference frame: inside the first clip that is
  // still the image's latent even though refreshed_ref_ is already captured.
  if (prefill_needed) prefill(sink_ref_);
}

void GenerationSession::prefill(const at::Tensor& ref_latent) {
  sink_ = dit_->prefill_sink(ref_latent, motion_latents_, prompt_);
  sink_ref_ = ref_latent;
}

at::Tensor GenerationSession::next_block(const at::Tensor& audio, const at::Tensor& pose) {
  apply_pending();
  c10::InferenceMode guard;
  const int64_t f = options_.frames_per_block;
  const int64_t first_frame = options_.first_frame + block_ * f;
  const int64_t current_start = first_frame * dit_->frame_tokens(h_, w_);
  const models::BlockConditioning cond = dit_->condition_block(audio, pose, first_frame, h_, w_, f);

  const int64_t clip = block_ / options_.blocks_per_clip, in_clip = block_ % options_.blocks_per_clip;
  if (clip != noise_clip_) {
    noise_ = clip_noise(noise_source_, options_.seed, clip, dit_->config().out_dim,
                        options_.frames_per_block * options_.blocks_per_clip, h_, w_, dit_->device(), dit_->dtype());
    noise_clip_ = clip;
  }
  at::Tensor x = noise_.narrow(1, in_clip * f, f);
  for (int i = 0; i < options_.steps; ++i) {
    const at::Tensor v = dit_->forward(x, schedule_.timesteps[i], cond, kv_[i], sink_, prompt_, current_start, rd_.next());
    x = sampler::euler_step(x, v, schedule_.sigmas[i], schedule_.sigmas[i + 1]);
    if (step_observer_) step_observer_(i, x);
  }
  ++block_;
  if (options_.refresh_sink_after_first_clip) {
    if (block_ == 1) refreshed_ref_ = x.narrow(1, 0, 1).clone();
    if (block_ == options_.blocks_per_clip && refreshed_ref_.defined()) prefill(refreshed_ref_);
  }
  return x;
}

void GenerationSession::reset() {
  c10::InferenceMode guard;
  for (auto& kv : kv_) {
    for (auto& t : kv.k) t.zero_();
    for (auto& t : kv.v) t.zero_();
  }
  block_ = 0;
  noise_clip_ = -1;
  noise_.reset();
  rd_.restart();
  refreshed_ref_.reset();
  // The new stream's sink starts from the image again (not from a refreshed frame).
  if (sink_ref_.defined() && !sink_ref_.is_same(ref_latent_) && !prompt_.layers.empty()) prefill(ref_latent_);
}

int64_t GenerationSession::cache_bytes() const {
  int64_t bytes = 0;
  auto add = [&](const std::vector<at::Tensor>& ts) {
    for (const auto& t : ts) bytes += t.numel() * static_cast<int64_t>(t.element_size());
  };
  for (const auto& kv : kv_) {
    add(kv.k);
    add(kv.v);
  }
  add(sink_.k);
  add(sink_.v);
  return bytes;
}

}  // namespace la::session

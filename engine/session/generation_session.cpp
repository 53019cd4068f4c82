#include "engine/session/generation_session.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <stdexcept>

#include "engine/io/tensor_view.h"

namespace la::session {
namespace {

// splitmix64: a tiny, portable generator, so the rd sequence of a seed is the
// same on every platform and standard library.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The reference draws the sink offset as random.randint(4, 30).
constexpr int kMinRd = 4, kMaxRd = 30;

}  // namespace

GenerationSession::GenerationSession(std::shared_ptr<const models::S2vDit> dit, int64_t latent_h, int64_t latent_w,
                                     SessionOptions options)
    : dit_(std::move(dit)), h_(latent_h), w_(latent_w), options_(options) {
  if (!dit_) throw std::invalid_argument("GenerationSession needs a DiT");
  if (h_ < 2 || w_ < 2 || h_ % 2 || w_ % 2)
    throw std::invalid_argument("latent size " + std::to_string(h_) + "x" + std::to_string(w_) +
                                " is not divisible by the DiT's 2x2 patch (output size must be a multiple of 16)");
  if (options_.blocks_per_clip < 1 || options_.frames_per_block < 1)
    throw std::invalid_argument("blocks_per_clip and frames_per_block must be >= 1");
  if (options_.first_frame < 0 || options_.first_frame % options_.frames_per_block)
    throw std::invalid_argument("first_frame must be a non-negative multiple of frames_per_block");
  if (options_.fixed_rd && (*options_.fixed_rd < 0 || *options_.fixed_rd > kMaxRd))
    throw std::invalid_argument("fixed rd must be in 0..30");
  schedule_ = sampler::flow_match_schedule(options_.steps);  // validates steps
  const int64_t block_tokens = options_.frames_per_block * dit_->frame_tokens(h_, w_);
  for (int i = 0; i < options_.steps; ++i) kv_.push_back(dit_->make_kv_cache(block_tokens * options_.blocks_per_clip));
  rng_state_ = options_.seed;
}

void GenerationSession::set_prompt(const at::Tensor& text_states) {
  const auto& cfg = dit_->config();
  if (!text_states.defined() || text_states.dim() != 2 || text_states.size(1) != cfg.text_dim ||
      text_states.size(0) < 1 || text_states.size(0) > cfg.text_len)
    throw std::invalid_argument("prompt states must be [1.." + std::to_string(cfg.text_len) + ", " +
                                std::to_string(cfg.text_dim) + "], got " +
                                (text_states.defined() ? io::shape_string(text_states.sizes()) : "nothing"));
  pending_text_ = text_states;
}

void GenerationSession::set_reference(const at::Tensor& ref_latent, const at::Tensor& motion_latents) {
  const int64_t c = dit_->config().in_dim;
  auto ok = [&](const at::Tensor& t, bool one_frame) {
    return t.defined() && t.dim() == 4 && t.size(0) == c && (!one_frame || t.size(1) == 1) && t.size(1) >= 1 &&
           t.size(2) == h_ && t.size(3) == w_;
  };
  if (!ok(ref_latent, true) || !ok(motion_latents, false))
    throw std::invalid_argument("reference latent must be [" + std::to_string(c) + ", 1, " + std::to_string(h_) +
                                ", " + std::to_string(w_) + "] and motion latents [" + std::to_string(c) + ", F, " +
                                std::to_string(h_) + ", " + std::to_string(w_) + "]");
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

int GenerationSession::next_rd() {
  if (rd_source_) return rd_source_();
  if (options_.fixed_rd) return *options_.fixed_rd;
  return kMinRd + static_cast<int>(splitmix64(rng_state_) % (kMaxRd - kMinRd + 1));
}

at::Tensor GenerationSession::clip_noise(int64_t clip) const {
  const int64_t frames = options_.frames_per_block * options_.blocks_per_clip;
  at::Tensor noise;
  if (noise_source_) {
    noise = noise_source_(clip);
  } else {
    // Drawn on the CPU so a seed gives the same stream on every device.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(options_.seed + static_cast<uint64_t>(clip));
    noise = at::randn({dit_->config().out_dim, frames, h_, w_}, gen, at::TensorOptions().dtype(at::kFloat));
  }
  if (noise.dim() != 4 || noise.size(0) != dit_->config().out_dim || noise.size(1) != frames || noise.size(2) != h_ ||
      noise.size(3) != w_)
    throw std::invalid_argument("clip noise has shape " + io::shape_string(noise.sizes()));
  return noise.to(dit_->device(), dit_->dtype());
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
    noise_ = clip_noise(clip);
    noise_clip_ = clip;
  }
  at::Tensor x = noise_.narrow(1, in_clip * f, f);
  for (int i = 0; i < options_.steps; ++i) {
    const at::Tensor v = dit_->forward(x, schedule_.timesteps[i], cond, kv_[i], sink_, prompt_, current_start, next_rd());
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
  rng_state_ = options_.seed;
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

#include "engine/session/stream_inputs.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <stdexcept>
#include <string>

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

void check_session_options(const SessionOptions& o, int64_t h, int64_t w) {
  if (h < 2 || w < 2 || h % 2 || w % 2)
    throw std::invalid_argument("latent size " + std::to_string(h) + "x" + std::to_string(w) +
                                " is not divisible by the DiT's 2x2 patch (output size must be a multiple of 16)");
  if (o.blocks_per_clip < 1 || o.frames_per_block < 1)
    throw std::invalid_argument("blocks_per_clip and frames_per_block must be >= 1");
  if (o.first_frame < 0 || o.first_frame % o.frames_per_block)
    throw std::invalid_argument("first_frame must be a non-negative multiple of frames_per_block");
  if (o.fixed_rd && (*o.fixed_rd < 0 || *o.fixed_rd > kMaxRd)) throw std::invalid_argument("fixed rd must be in 0..30");
}

void check_prompt_states(const models::S2vDitConfig& cfg, const at::Tensor& t) {
  if (!t.defined() || t.dim() != 2 || t.size(1) != cfg.text_dim || t.size(0) < 1 || t.size(0) > cfg.text_len)
    throw std::invalid_argument("prompt states must be [1.." + std::to_string(cfg.text_len) + ", " +
                                std::to_string(cfg.text_dim) + "], got " +
                                (t.defined() ? io::shape_string(t.sizes()) : "nothing"));
}

void check_reference(int64_t c, int64_t h, int64_t w, const at::Tensor& ref_latent, const at::Tensor& motion_latents) {
  auto ok = [&](const at::Tensor& t, bool one_frame) {
    return t.defined() && t.dim() == 4 && t.size(0) == c && (!one_frame || t.size(1) == 1) && t.size(1) >= 1 &&
           t.size(2) == h && t.size(3) == w;
  };
  if (!ok(ref_latent, true) || !ok(motion_latents, false))
    throw std::invalid_argument("reference latent must be [" + std::to_string(c) + ", 1, " + std::to_string(h) +
                                ", " + std::to_string(w) + "] and motion latents [" + std::to_string(c) + ", F, " +
                                std::to_string(h) + ", " + std::to_string(w) + "]");
}

int RdSequence::next() {
  if (source_) return source_();
  if (fixed_) return *fixed_;
  return kMinRd + static_cast<int>(splitmix64(state_) % (kMaxRd - kMinRd + 1));
}

at::Tensor clip_noise(const std::function<at::Tensor(int64_t)>& source, uint64_t seed, int64_t clip,
                      int64_t channels, int64_t frames, int64_t h, int64_t w, at::Device device,
                      at::ScalarType dtype) {
  at::Tensor noise;
  if (source) {
    noise = source(clip);
  } else {
    // Drawn on the CPU so a seed gives the same stream on every device.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + static_cast<uint64_t>(clip));
    noise = at::randn({channels, frames, h, w}, gen, at::TensorOptions().dtype(at::kFloat));
  }
  if (noise.dim() != 4 || noise.size(0) != channels || noise.size(1) != frames || noise.size(2) != h ||
      noise.size(3) != w)
    throw std::invalid_argument("clip noise has shape " + io::shape_string(noise.sizes()));
  return noise.to(device, dtype);
}

}  // namespace la::session

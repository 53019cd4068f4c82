// The per-stream state the DiT reads and writes. A session owns these; the
// model (S2vDit) is immutable and shared.
#pragma once

#include <ATen/core/Tensor.h>
#include <vector>

#include "engine/models/s2v_dit/rope.h"
#include "engine/models/s2v_dit/transformer_block.h"

namespace la::models {

// Self-attention history of one denoising step: per layer a ring of `capacity`
// tokens ([capacity, heads, head_dim], K stored roped with absolute positions,
// so it never needs re-roping after the ring wraps).
struct StepKvCache {
  std::vector<at::Tensor> k, v;
  int64_t capacity = 0;
};

// The sink ("cond") tokens of every layer: the reference frame and the
// frame-packed motion tokens, computed once by the prefill with t = 0. K is
// stored un-roped and re-rotated every call, because the reference frame's
// temporal position rolls with the stream (the rolling sink).
struct CondCache {
  std::vector<at::Tensor> k, v;   // per layer [tokens, heads, head_dim]
  std::vector<RopeGroup> groups;  // reference group first, then the motion groups
  int64_t tokens = 0;
};

// A prompt's text embedding as each layer's cross-attention keys/values.
struct PromptCache {
  std::vector<CrossKv> layers;
};

// What one block's four denoising steps share: its audio tokens, pose tokens
// and noisy-token RoPE table.
struct BlockConditioning {
  at::Tensor audio_global;  // [F, dim] float32
  at::Tensor audio_local;   // [F, tokens, dim] float32
  at::Tensor pose;          // [F*T, dim]: cond_encoder(pose latents) + noisy type embedding
  RopeTable rope;           // [F*T, head_dim/2], float64 on the model's device
  int64_t first_frame = 0;  // absolute latent-frame index n of the block
};

// Optional per-layer outputs, for parity tests against the reference's dumps.
struct DitTrace {
  std::vector<at::Tensor> block_out;    // [1, tokens, dim] after each block
  std::vector<at::Tensor> after_audio;  // same, after audio injection (denoising calls only)
};

}  // namespace la::models

// The causal S2V DiT (Wan2.2-S2V-14B + LiveAvatar, reference
// causal_model_s2v.py): an immutable model of tensors named as the checkpoint
// keys, and the functions a generation session calls:
//
//   auto dit = S2vDit::load(dir + "/Wan2.2-S2V-14B", lora_file, at::kCUDA, at::kBFloat16);
//   PromptCache prompt = dit->encode_prompt(umt5_states);            // per prompt
//   CondCache sink = dit->prefill_sink(ref_latent, motion_latents, prompt);  // per reference image
//   StepKvCache kv = dit->make_kv_cache(4 * dit->block_tokens(h, w));         // one per step
//   BlockConditioning c = dit->condition_block(audio_block, {}, n, h, w);     // per block
//   at::Tensor v = dit->forward(x, t, c, kv, sink, prompt, current_start, rd); // per step
//
// Thread-safety: a loaded S2vDit is read-only and may be used by any number of
// sessions at once; the caches are per stream.
#pragma once

#include <ATen/core/Tensor.h>
#include <map>
#include <memory>
#include <string>

#include "engine/models/s2v_dit/audio_encoder.h"
#include "engine/models/s2v_dit/dit_caches.h"
#include "engine/models/s2v_dit/dit_weights.h"

namespace la::models {

struct S2vDitOptions {
  // Round the cross-attention input through bf16 as the reference does even
  // in float32; false only to compare with the fixture that removed it.
  bool norm3_bf16_round_trip = true;
  // Audio prefix (73 pixel frames = 19 latent frames) the reference puts in
  // front of each block's audio before encoding it.
  int64_t motion_frames = 73;
  int64_t motion_latent_frames = 19;
  // fp8 (e4m3) weights and activations for the large linears, as the
  // reference's --fp8 (engine/nn/fp8_linear.h); the LoRA is merged first.
  bool fp8 = false;
  // The part of the DiT to hold (a pipeline stage, DESIGN §6): its blocks,
  // plus the stem with block 0 and the head with the last block.
  DitLayerRange layers;
  // Record the autograd graph (tools/miniature trains through this code):
  // the forward functions then run outside c10::InferenceMode, and from_tensors
  // keeps float32 weights on their device as the very tensors it was given, so
  // gradients reach the caller's tensors. Inference leaves it false.
  bool record_autograd = false;
};

// What a step hands from one part of the DiT to the next (layer-split
// pipelines): the token activations and what every block and the head read.
struct StepActivations {
  at::Tensor hidden;        // [frames, frame_tokens, dim], compute dtype
  at::Tensor e0, e;         // time conditioning for the blocks and the head (float32)
  RopeTable sink_rope;      // the rolling sink's table for this block
  int64_t frames = 0, grid_h = 0, grid_w = 0;
  int64_t current_start = 0;
};

// What the sink prefill hands from one part to the next.
struct SinkActivations {
  at::Tensor hidden;  // [1, sink tokens, dim]
  at::Tensor e0;      // time conditioning at t = 0
  RopeTable rope;
  std::vector<RopeGroup> groups;
};

// Copies to `device` (a no-op on the same device).
StepActivations to_device(const StepActivations& a, at::Device device);
SinkActivations to_device(const SinkActivations& a, at::Device device);
BlockConditioning to_device(const BlockConditioning& c, at::Device device);

class S2vDit {
 public:
  // `dit_dir`: the Wan2.2-S2V-14B directory (config.json + sharded safetensors);
  // `lora`: liveavatar.safetensors, merged at load, or "" for none. Every key
  // is shape-checked; missing and unexpected tensors are errors naming file
  // and key. Throws io::CheckpointError.
  static std::shared_ptr<const S2vDit> load(const std::string& dit_dir, const std::string& lora, at::Device device,
                                            at::ScalarType dtype, const S2vDitOptions& options = {});
  // From tensors already in memory (tests, benchmarks with random weights);
  // `origin` names them in errors.
  static std::shared_ptr<const S2vDit> from_tensors(const std::map<std::string, at::Tensor>& tensors,
                                                    const S2vDitConfig& cfg, at::Device device,
                                                    at::ScalarType dtype, const S2vDitOptions& options = {},
                                                    const std::string& origin = "tensors");

  const S2vDitConfig& config() const { return cfg_; }
  at::Device device() const { return device_; }
  at::ScalarType dtype() const { return dtype_; }
  // Tokens of one latent frame of h x w latents.
  int64_t frame_tokens(int64_t latent_h, int64_t latent_w) const;
  // Linears running in fp8 (0 without options.fp8).
  int64_t fp8_layers() const { return fp8_layers_; }
  // The blocks this part holds, [layer_begin, layer_end), and whether it
  // holds the stem (block 0) and the head (the last block).
  int64_t layer_begin() const { return options_.layers.begin; }
  int64_t layer_end() const { return options_.layers.end_of(cfg_); }
  bool has_stem() const { return layer_begin() == 0; }
  bool has_head() const { return layer_end() == cfg_.num_layers; }
  bool whole() const { return has_stem() && has_head(); }
  // Bytes of the weights held (audio encoder included).
  int64_t weight_bytes() const;

  // umT5 states [L <= text_len, text_dim] -> per-layer cross-attention K/V.
  PromptCache encode_prompt(const at::Tensor& context) const;

  // The sink prefill (reference _forward_sink): reference latent [C,1,h,w] and
  // motion latents [C,F,h,w] (the last 19 frames are used, zero-padded in
  // front when fewer) through every block at t = 0; returns every layer's
  // cond K (un-roped) and V.
  CondCache prefill_sink(const at::Tensor& ref_latent, const at::Tensor& motion_latents, const PromptCache& prompt,
                         DitTrace* trace = nullptr) const;

  // The step-independent inputs of the block whose first latent frame is
  // `first_frame`: audio features [25, audio_dim, 4F] of its 4F video frames
  // and optional pose latents [cond_dim, F, h, w] (undefined = no pose video,
  // the reference's zeros).
  BlockConditioning condition_block(const at::Tensor& audio, const at::Tensor& pose, int64_t first_frame,
                                    int64_t latent_h, int64_t latent_w, int64_t frames = 3) const;

  // A KV ring for this part's blocks.
  StepKvCache make_kv_cache(int64_t capacity_tokens) const;

  // One denoising step of one block (reference _forward_inference): noisy
  // latents x [in_dim, F, h, w] at timestep t -> velocity [out_dim, F, h, w]
  // in the model dtype. Writes the block's K/V into `kv` at `current_start`
  // (token offset, unbounded; wrapped modulo the ring). `rd` (4..30) places
  // the sink's reference frame at temporal position max(30, n + rd).
  at::Tensor forward(const at::Tensor& x, float t, const BlockConditioning& block, StepKvCache& kv,
                     const CondCache& sink, const PromptCache& prompt, int64_t current_start, int rd,
                     DitTrace* trace = nullptr) const;

  // The same computations in pieces, for a part of the DiT (a pipeline
  // stage): the stem's functions need has_stem(), step_output has_head();
  // caches and prompt hold this part's blocks only. encode_prompt is
  // prompt_layers(embed_prompt(c)); prefill_sink and forward are the three
  // pieces in a row, so a chain of parts computes exactly what one whole
  // model does.
  at::Tensor embed_prompt(const at::Tensor& context) const;  // -> [text_len, dim]
  PromptCache prompt_layers(const at::Tensor& text) const;
  SinkActivations sink_input(const at::Tensor& ref_latent, const at::Tensor& motion_latents) const;
  void prefill_layers(SinkActivations& a, const PromptCache& prompt, CondCache& sink, DitTrace* trace = nullptr) const;
  StepActivations step_input(const at::Tensor& x, float t, const BlockConditioning& block, const CondCache& sink,
                             int64_t current_start, int rd) const;
  void step_layers(StepActivations& a, const BlockConditioning& block, StepKvCache& kv, const CondCache& sink,
                   const PromptCache& prompt, DitTrace* trace = nullptr) const;
  at::Tensor step_output(const StepActivations& a) const;  // -> velocity [out_dim, F, h, w]

 private:
  void require_stem(const char* what) const;
  void require_head(const char* what) const;
  S2vDit(S2vDitConfig cfg, at::Device device, at::ScalarType dtype, S2vDitOptions options)
      : cfg_(std::move(cfg)), device_(device), dtype_(dtype), options_(options) {}
  at::Tensor frame_pack(const at::Tensor& motion_latents) const;

  S2vDitConfig cfg_;
  at::Device device_;
  at::ScalarType dtype_;
  S2vDitOptions options_;
  DitWeights w_;
  CausalAudioEncoder audio_;
  int64_t fp8_layers_ = 0;
};

}  // namespace la::models

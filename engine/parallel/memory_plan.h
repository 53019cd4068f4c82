// The memory/time planner (DESIGN §6): from a DiT config alone, before any
// weight is loaded, the bytes each device of a multi-device DiT pipeline will
// allocate, and the matmul FLOPs each runs per block. la-plan prints it; the
// generator refuses a layout that does not fit at NULL->READY with
// plan_suggestion()'s line.
//
// How each term is counted (docs/planner.md has the table of the release):
//  - weights: every tensor of s2v_dit_tensor_specs that s2v_dit_tensor_in_range
//    gives the stage, in make_dit_weights' dtypes (time embedding/projection,
//    modulations and the head float32, the rest the model dtype), plus the
//    audio encoder (float32) on the stage with block 0; fp8: the linears
//    convert_to_fp8 lists become 1 byte/element + a 4-byte scale, bias kept.
//  - kv_rings: make_kv_cache's K and V [capacity, heads, head_dim] per block
//    held and per step run; capacity = blocks_per_clip * block tokens.
//  - sink_cache / prompt_kv: prefill_sink's K,V per block held over the sink
//    tokens (the groups of sink_groups), encode_prompt's K,V per block over
//    text_len. A `steps` stage holds all blocks of both.
//  - change_copy: while a new prompt or image is prefilled the old prompt K/V
//    and sink stay alive (the session assigns after computing; a pipeline
//    keeps them for blocks in flight): one more prompt_kv + sink_cache,
//    reported on its own line and INCLUDED in the total.
//  - peak_activations: the largest live set of one denoising step (with the
//    block's conditioning) or one sink prefill on the stage, from a replay of
//    the engine's code (S2vDit::step_input/step_layers/step_output,
//    block_forward, apply_rope, inject_audio, fp8_linear) that allocates and
//    frees byte counts with C++'s temporary lifetimes (a temporary lives to the
//    end of its full expression; a .to() to the same dtype allocates nothing).
//    The attention kernel is counted as flash attention does on CUDA and on
//    the CPU (output [L, heads, head_dim] + a float32 log-sum-exp row per
//    query and head; the CPU kernel's per-thread tiles are below 1 MiB).
//    tests/unit/test_memory_plan.cpp checks it against a counting CPU
//    allocator around condition_block + forward and the prefill at full width.
//    Not counted: the umT5 / VAE encoders' activations while a prompt or image
//    is encoded, the VAE decoder's activations, the CUDA context, cuBLAS
//    workspaces and allocator fragmentation: PlanRequest::reserve_gib
//    stands for those on every device.
//  - vae_decoder: the Wan VAE (the decoder element loads the whole model) and
//    its streaming feature cache (two input frames per cached conv) on
//    vae_device; the weights are shared with the generator's VAE when that
//    is the same device (the process loads a model once per device).
//  - encoders: umT5 and the Wan VAE the generator encodes
//    the reference image with, on the first DiT device.
//  - audio encoder: laaudiofeat's wav2vec2 (the CTC head and the
//    training-only masked embedding are not kept; the positional conv's
//    weight norm is held as one weight) on audio_device.
#pragma once

#include <c10/core/ScalarType.h>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/models/s2v_dit_layout.h"
#include "engine/models/umt5_layout.h"
#include "engine/models/wav2vec2_layout.h"
#include "engine/models/wan_vae_layout.h"
#include "engine/parallel/partition.h"

namespace la::parallel {

struct PlanRequest {
  models::S2vDitConfig cfg;
  models::Umt5Config t5;    // the release's umT5-XXL encoder
  models::WanVaeConfig vae;  // the release's Wan 2.1 VAE
  models::Wav2Vec2Config wav2vec2;  // the release's wav2vec2-large-xlsr-53-english (laaudiofeat)
  // Output pixels, multiples of 16. The default is what liveavatargen's
  // default size=720*400 (an area) gives a 16:9 picture.
  int64_t width = 704, height = 384;
  int steps = 4;
  int64_t blocks_per_clip = 4, frames_per_block = 3;
  std::vector<double> device_gib;  // capacity of each device
  DitSplit split = DitSplit::kAuto;
  bool fp8 = false;
  // Index into device_gib of the VAE decoder's device, or -1 (none / another
  // machine). DiT stages run on every other device (on all of them when it
  // is the only one); the encoders sit on the first DiT device.
  int vae_device = -1;
  // Index into device_gib of laaudiofeat's wav2vec2, or -1 (not counted: the
  // generator's own plan, which does not know where laaudiofeat runs).
  // liveavatarbin puts it on cuda-device-id, beside the VAE decoder.
  int audio_device = -1;
  // umT5 loaded per prompt and released: noted in the table, but counted,
  // since each prompt change loads it beside the DiT (the peak is the same).
  bool offload = false;
  double tflops = 0;        // sustained matmul TFLOP/s per device (0: no frames/s)
  double reserve_gib = 1.0;  // per device: CUDA context, workspaces, fragmentation
  at::ScalarType dtype = at::kBFloat16;  // the CPU runs float32
  bool cpu = false;          // plan for CPU tensors (host-side temporaries count)
};

// Bytes of one peak: the largest live set and where it happens.
struct ActivationPeak {
  int64_t bytes = 0;
  std::string where;
};

struct DevicePlan {
  int device = 0;               // index into PlanRequest::device_gib
  bool dit = false;             // runs a DiT stage
  StageAssignment stage;        // valid when dit
  int64_t weights = 0, kv_rings = 0, sink_cache = 0, prompt_kv = 0, change_copy = 0;
  ActivationPeak step, prefill;  // the activation term is the larger
  int64_t vae_decoder = 0, encoders = 0, audio_encoder = 0, reserve = 0;
  int64_t total = 0, capacity = 0;
  double flops_per_block = 0;   // matmul FLOPs of this stage per block (all its steps)
  int64_t peak_activations() const { return std::max(step.bytes, prefill.bytes); }
  bool fits() const { return total <= capacity; }
};

struct MemoryPlan {
  PlanRequest request;
  DitSplit split = DitSplit::kSteps;  // resolved
  std::vector<DevicePlan> devices;
  int64_t block_tokens = 0, sink_tokens = 0, ring_tokens = 0;
  double frames_per_second = 0;  // at request.tflops, slowest stage; 0 without tflops
  bool fits = false;
  std::string error;  // a layout assign_stages refuses (then fits = false)
};

// Throws std::invalid_argument for a size not a multiple of 16, no devices or
// a vae_device or audio_device out of range.
MemoryPlan plan_memory(const PlanRequest& request);

// The human table; its last line is exactly
// "fits: yes|no, split: steps|layers, largest device: X.X of Y.Y GiB".
std::string format_plan(const MemoryPlan& plan);

// "" when the plan fits, else one line of what would (layers split, fp8,
// more devices, a smaller size), each checked with plan_memory.
std::string plan_suggestion(const MemoryPlan& plan);

// --- The terms, for tests and the tool --------------------------------------

// Bytes of the DiT weights of `range` as S2vDit::from_tensors holds them.
int64_t planned_weight_bytes(const models::S2vDitConfig& cfg, const models::DitLayerRange& range,
                             at::ScalarType dtype, bool fp8);
// Sink tokens for latents of latent_h x latent_w (sink_groups).
int64_t planned_sink_tokens(int64_t latent_h, int64_t latent_w);
// Per block held: K+V of `tokens` tokens in `dtype`.
int64_t planned_kv_bytes(const models::S2vDitConfig& cfg, int64_t tokens, at::ScalarType dtype);

struct ActivationShape {
  int64_t frames = 3, grid_h = 0, grid_w = 0;  // one block's noisy tokens = frames * grid_h * grid_w
  int64_t ring_tokens = 0;   // KV ring capacity (all of it attended once wrapped)
  int64_t sink_tokens = 0;
};
// One denoising step of the part `range` (with condition_block's tensors
// when the part has the stem, the received activations otherwise).
ActivationPeak planned_step_activations(const models::S2vDitConfig& cfg, const models::DitLayerRange& range,
                                        const ActivationShape& shape, at::ScalarType dtype, bool fp8, bool cpu);
// The sink prefill of the part `range`, excluding the sink cache it fills.
ActivationPeak planned_prefill_activations(const models::S2vDitConfig& cfg, const models::DitLayerRange& range,
                                           const ActivationShape& shape, at::ScalarType dtype, bool fp8, bool cpu);
// Bytes of the Wan VAE's weights, and of one stream's decode feature cache.
int64_t planned_vae_weight_bytes(const models::WanVaeConfig& cfg, at::ScalarType dtype);
int64_t planned_vae_decode_state_bytes(const models::WanVaeConfig& cfg, int64_t latent_h, int64_t latent_w,
                                       at::ScalarType dtype);
int64_t planned_umt5_weight_bytes(const models::Umt5Config& cfg, at::ScalarType dtype);
// Bytes of wav2vec2's weights as Wav2Vec2::from_store keeps them.
int64_t planned_wav2vec2_weight_bytes(const models::Wav2Vec2Config& cfg, at::ScalarType dtype);
// Matmul FLOPs of one forward of `range` over `tokens` noisy tokens
// attending to `self_keys` keys (tools/bench/dit_flops' counting).
double planned_forward_flops(const models::S2vDitConfig& cfg, const models::DitLayerRange& range, int64_t tokens,
                             int64_t self_keys);

}  // namespace la::parallel

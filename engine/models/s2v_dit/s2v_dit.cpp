#include "engine/models/s2v_dit/s2v_dit.h"

#include <ATen/ATen.h>
#include <algorithm>
#include <set>
#include <stdexcept>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_config.h"
#include "engine/io/tensor_view.h"
#include "engine/io/weight_store.h"
#include "engine/models/s2v_dit/audio_injector.h"
#include "engine/models/s2v_dit/dit_ops.h"
#include "engine/models/s2v_dit/lora_merge.h"
#include "engine/models/s2v_dit/output_head.h"
#include "engine/nn/inference_guard.h"

namespace la::models {
namespace {

// trainable_cond_mask rows: what kind of token a row of the sequence is.
constexpr int64_t kNoisyToken = 0, kReferenceToken = 1, kMotionToken = 2;
// FramePackMotioner buckets, oldest first: 16 frames at 4x, 2 at 2x, 1 at full resolution.
constexpr int64_t kPack4x = 16, kPack2x = 2, kPackPost = 1, kPackedFrames = kPack4x + kPack2x + kPackPost;
// The sink's reference frame sits at temporal position 30 and rolls to max(30, n + rd).
constexpr int64_t kReferencePosition = 30;

std::string shape(const at::Tensor& t) { return io::shape_string(t.sizes()); }

void check_latents(const at::Tensor& x, int64_t channels, const std::string& what) {
  if (!x.defined() || x.dim() != 4 || x.size(0) != channels || x.size(1) < 1 || x.size(2) < 2 || x.size(3) < 2 ||
      x.size(2) % 2 || x.size(3) % 2)
    throw std::invalid_argument(what + " must be [" + std::to_string(channels) +
                                ", frames, h, w] with h and w even (the DiT's 2x2 patch), got " +
                                (x.defined() ? shape(x) : std::string("nothing")));
}

}  // namespace

std::shared_ptr<const S2vDit> S2vDit::load(const std::string& dit_dir, const std::string& lora, at::Device device,
                                           at::ScalarType dtype, const S2vDitOptions& options) {
  const S2vDitConfig cfg = S2vDitConfig::from_json(io::JsonConfig::load(dit_dir + "/config.json"));
  auto store = io::WeightStore::open(dit_dir);
  std::set<std::string> other_parts;  // keys of the DiT that other stages hold
  std::set<std::string> known;
  std::map<std::string, at::Tensor> tensors;
  for (const auto& spec : s2v_dit_tensor_specs(cfg)) {
    known.insert(spec.name);
    if (s2v_dit_tensor_in_range(spec.name, cfg, options.layers)) tensors[spec.name] = store.get(spec.name, spec.shape);
    else other_parts.insert(spec.name);
  }
  std::vector<std::string> unused;
  for (const auto& key : store.unused_keys())
    if (!known.count(key)) unused.push_back(key);
  if (!unused.empty())
    throw io::CheckpointError::about_tensor(
        store.file_of(unused.front()), unused.front(),
        "is not part of an S2V DiT with the dimensions of " + dit_dir + "/config.json" +
            (unused.size() > 1 ? " (" + std::to_string(unused.size() - 1) + " more unexpected tensors)" : ""));
  if (!lora.empty()) {
    auto lora_store = io::WeightStore::open(lora);
    merge_lora(tensors, lora_store, lora_alpha(lora),
               [&](const std::string& key) { return other_parts.count(key) > 0; });
  }
  return from_tensors(tensors, cfg, device, dtype, options, dit_dir);
}

std::shared_ptr<const S2vDit> S2vDit::from_tensors(const std::map<std::string, at::Tensor>& tensors,
                                                   const S2vDitConfig& cfg, at::Device device, at::ScalarType dtype,
                                                   const S2vDitOptions& options, const std::string& origin) {
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf)
    throw std::invalid_argument("S2V DiT dtype must be float32, bfloat16 or float16");
  nn::InferenceGuard guard(options.record_autograd);
  io::WeightStore store;  // shape checks with the origin's name in errors
  store.add_tensors(origin, tensors);
  std::map<std::string, at::Tensor> checked;
  for (const auto& spec : s2v_dit_tensor_specs(cfg))
    if (s2v_dit_tensor_in_range(spec.name, cfg, options.layers)) checked[spec.name] = store.get(spec.name, spec.shape);
  std::shared_ptr<S2vDit> m(new S2vDit(cfg, device, dtype, options));
  m->w_ = make_dit_weights(checked, cfg, options.layers, device, dtype);
  if (options.fp8) m->fp8_layers_ = convert_to_fp8(m->w_, nn::fp8_target(device));
  if (m->has_stem())
    m->audio_ = CausalAudioEncoder::from_store(
        store, "casual_audio_encoder.", {cfg.audio_dim, cfg.dim, cfg.num_audio_token, kAudioHiddenStates}, device);
  return m;
}

int64_t S2vDit::weight_bytes() const { return dit_weight_bytes(w_) + (has_stem() ? audio_.bytes() : 0); }

void S2vDit::require_stem(const char* what) const {
  if (!has_stem())
    throw std::logic_error(std::string(what) + " needs the DiT's stem, which the part holding block 0 has (this part: blocks " +
                           std::to_string(layer_begin()) + ".." + std::to_string(layer_end() - 1) + ")");
}

void S2vDit::require_head(const char* what) const {
  if (!has_head())
    throw std::logic_error(std::string(what) + " needs the DiT's head, which the part holding the last block has (this part: blocks " +
                           std::to_string(layer_begin()) + ".." + std::to_string(layer_end() - 1) + ")");
}

int64_t S2vDit::frame_tokens(int64_t latent_h, int64_t latent_w) const { return (latent_h / 2) * (latent_w / 2); }

at::Tensor S2vDit::embed_prompt(const at::Tensor& context) const {
  if (!context.defined() || context.dim() != 2 || context.size(1) != cfg_.text_dim || context.size(0) < 1)
    throw std::invalid_argument("text context must be [tokens, " + std::to_string(cfg_.text_dim) + "], got " +
                                (context.defined() ? shape(context) : std::string("nothing")));
  if (context.size(0) > cfg_.text_len)
    throw std::invalid_argument("text context has " + std::to_string(context.size(0)) +
                                " tokens, more than the DiT's text_len " + std::to_string(cfg_.text_len));
  require_stem("embed_prompt");
  nn::InferenceGuard guard(options_.record_autograd);
  return embed_text(w_, cfg_, context);
}

PromptCache S2vDit::prompt_layers(const at::Tensor& text) const {
  nn::InferenceGuard guard(options_.record_autograd);
  const at::Tensor here = text.to(device_);
  PromptCache p;
  for (const auto& blk : w_.blocks) p.layers.push_back(cross_attention_kv(blk, cfg_, here, dtype_));
  return p;
}

PromptCache S2vDit::encode_prompt(const at::Tensor& context) const { return prompt_layers(embed_prompt(context)); }

at::Tensor S2vDit::frame_pack(const at::Tensor& motion) const {
  const int64_t frames = motion.size(1), keep = std::min(frames, kPackedFrames);
  at::Tensor packed = at::zeros({motion.size(0), kPackedFrames, motion.size(2), motion.size(3)}, motion.options());
  packed.narrow(1, kPackedFrames - keep, keep).copy_(motion.narrow(1, frames - keep, keep));
  // Token order is newest first: full-resolution frame, then 2x, then 4x.
  return at::cat({patchify(packed.narrow(1, kPack4x + kPack2x, kPackPost), w_.frame_post),
                  patchify(packed.narrow(1, kPack4x, kPack2x), w_.frame_2x),
                  patchify(packed.narrow(1, 0, kPack4x), w_.frame_4x)});
}

SinkActivations S2vDit::sink_input(const at::Tensor& ref_latent, const at::Tensor& motion_latents) const {
  check_latents(ref_latent, cfg_.in_dim, "reference latent");
  check_latents(motion_latents, cfg_.in_dim, "motion latents");
  if (ref_latent.size(1) != 1 || motion_latents.size(2) != ref_latent.size(2) ||
      motion_latents.size(3) != ref_latent.size(3))
    throw std::invalid_argument("reference latent must be one frame and motion latents the same h x w: got " +
                                shape(ref_latent) + " and " + shape(motion_latents));
  require_stem("the sink prefill's input");
  nn::InferenceGuard guard(options_.record_autograd);
  const int64_t h = ref_latent.size(2), w = ref_latent.size(3), d = cfg_.dim / cfg_.num_heads;
  const at::Tensor ref = patchify(ref_latent.to(device_, dtype_), w_.patch_embedding) + w_.cond_type_embedding[kReferenceToken];
  const at::Tensor motion = frame_pack(motion_latents.to(device_, dtype_)) + w_.cond_type_embedding[kMotionToken];
  SinkActivations a;
  a.hidden = at::cat({ref, motion}).unsqueeze(0);  // [1, C, dim]: one modulation group
  a.groups = sink_groups(h, w);
  a.rope = rope_on_device(rope_table(a.groups, d), device_);
  if (a.rope.cos.size(0) != a.hidden.size(1)) throw std::logic_error("sink RoPE groups do not match the sink tokens");
  a.e0 = time_conditioning(w_, cfg_, {0.0f}).e0;
  return a;
}

void S2vDit::prefill_layers(SinkActivations& a, const PromptCache& prompt, CondCache& sink, DitTrace* trace) const {
  if (prompt.layers.size() != w_.blocks.size()) throw std::invalid_argument("prefill_sink needs an encoded prompt");
  nn::InferenceGuard guard(options_.record_autograd);
  sink = CondCache{};
  sink.groups = a.groups;
  sink.tokens = a.hidden.size(1);
  const BlockOptions opts{dtype_, options_.norm3_bf16_round_trip};
  for (size_t i = 0; i < w_.blocks.size(); ++i) {
    const SelfAttentionCore attend = [&](const Qkv& qkv) {
      sink.k.push_back(qkv.k.clone());  // stored un-roped: re-rotated per call as the sink rolls
      sink.v.push_back(qkv.v.clone());
      return attend_heads(apply_rope(qkv.q, a.rope, dtype_), apply_rope(qkv.k, a.rope, dtype_), qkv.v);
    };
    a.hidden = block_forward(w_.blocks[i], cfg_, a.hidden, block_modulation(w_.blocks[i], a.e0), attend,
                             prompt.layers[i], opts);
    if (trace) trace->block_out.push_back(a.hidden.to(at::kFloat));
  }
}

CondCache S2vDit::prefill_sink(const at::Tensor& ref_latent, const at::Tensor& motion_latents,
                               const PromptCache& prompt, DitTrace* trace) const {
  SinkActivations a = sink_input(ref_latent, motion_latents);
  CondCache sink;
  prefill_layers(a, prompt, sink, trace);
  return sink;
}

BlockConditioning S2vDit::condition_block(const at::Tensor& audio, const at::Tensor& pose, int64_t first_frame,
                                          int64_t latent_h, int64_t latent_w, int64_t frames) const {
  const int64_t video_frames = 4 * frames;
  if (!audio.defined() || audio.dim() != 3 || audio.size(0) != kAudioHiddenStates ||
      audio.size(1) != cfg_.audio_dim || audio.size(2) != video_frames)
    throw std::invalid_argument("audio block must be [" + std::to_string(kAudioHiddenStates) + ", " +
                                std::to_string(cfg_.audio_dim) + ", " + std::to_string(video_frames) +
                                "] (hidden states, wav2vec2 width, video frames), got " +
                                (audio.defined() ? shape(audio) : std::string("nothing")));
  if (latent_h < 2 || latent_w < 2 || latent_h % 2 || latent_w % 2 || first_frame < 0)
    throw std::invalid_argument("latent size " + std::to_string(latent_h) + "x" + std::to_string(latent_w) +
                                " is not divisible by the DiT's 2x2 patch");
  require_stem("condition_block");
  nn::InferenceGuard guard(options_.record_autograd);
  BlockConditioning c;
  auto [global, local] = audio_.block_tokens(audio.unsqueeze(0).to(device_), options_.motion_frames,
                                             options_.motion_latent_frames);
  c.audio_global = global.squeeze(0).squeeze(1);  // [F, dim]
  c.audio_local = local.squeeze(0);               // [F, tokens, dim]
  if (c.audio_global.size(0) != frames)
    throw std::invalid_argument("audio block gives " + std::to_string(c.audio_global.size(0)) +
                                " latent frames of audio tokens, expected " + std::to_string(frames));
  const int64_t tokens = frames * frame_tokens(latent_h, latent_w);
  if (pose.defined()) {
    check_latents(pose, cfg_.cond_dim, "pose latents");
    if (pose.size(1) != frames || pose.size(2) != latent_h || pose.size(3) != latent_w)
      throw std::invalid_argument("pose latents must be [" + std::to_string(cfg_.cond_dim) + ", " +
                                  std::to_string(frames) + ", " + std::to_string(latent_h) + ", " +
                                  std::to_string(latent_w) + "], got " + shape(pose));
    c.pose = patchify(pose.to(device_, dtype_), w_.cond_encoder);
  } else {
    // No pose video: the reference runs cond_encoder on zeros, which is exactly its bias.
    c.pose = w_.cond_encoder.bias.unsqueeze(0).expand({tokens, cfg_.dim});
  }
  c.rope = rope_on_device(rope_table(noisy_block_groups(first_frame, frames, latent_h / 2, latent_w / 2),
                                    cfg_.dim / cfg_.num_heads),
                         device_);
  c.first_frame = first_frame;
  return c;
}

StepKvCache S2vDit::make_kv_cache(int64_t capacity_tokens) const {
  const int64_t heads = cfg_.num_heads, d = cfg_.dim / heads;
  StepKvCache kv;
  kv.capacity = capacity_tokens;
  for (size_t i = 0; i < w_.blocks.size(); ++i) {
    kv.k.push_back(at::zeros({capacity_tokens, heads, d}, at::TensorOptions(device_).dtype(dtype_)));
    kv.v.push_back(at::zeros({capacity_tokens, heads, d}, at::TensorOptions(device_).dtype(dtype_)));
  }
  return kv;
}

StepActivations S2vDit::step_input(const at::Tensor& x, float t, const BlockConditioning& block, const CondCache& sink,
                                   int64_t current_start, int rd) const {
  check_latents(x, cfg_.in_dim, "block latents");
  const int64_t frames = x.size(1), grid_h = x.size(2) / 2, grid_w = x.size(3) / 2;
  const int64_t per_frame = grid_h * grid_w, tokens = frames * per_frame;
  if (block.rope.cos.size(0) != tokens || block.audio_global.size(0) != frames)
    throw std::invalid_argument("block latents " + shape(x) + " do not match the block's conditioning (" +
                                std::to_string(block.rope.cos.size(0)) + " tokens)");
  if (sink.tokens == 0) throw std::invalid_argument("forward needs a sink prefill");
  if (current_start < 0 || current_start % tokens || current_start / per_frame != block.first_frame)
    throw std::invalid_argument("current_start " + std::to_string(current_start) +
                                " is not the token offset of the block's first frame " +
                                std::to_string(block.first_frame));
  if (rd < 0) throw std::invalid_argument("rd must be >= 0");
  require_stem("step_input");
  nn::InferenceGuard guard(options_.record_autograd);
  StepActivations a;
  a.frames = frames;
  a.grid_h = grid_h;
  a.grid_w = grid_w;
  a.current_start = current_start;
  at::Tensor hidden = patchify(x.to(device_, dtype_), w_.patch_embedding) + block.pose;
  a.hidden = (hidden + w_.cond_type_embedding[kNoisyToken]).view({frames, per_frame, cfg_.dim});
  const TimeConditioning tc = time_conditioning(w_, cfg_, std::vector<float>(frames, t));
  a.e0 = tc.e0;
  a.e = tc.e;
  // The rolling sink: the reference frame moves to max(30, n + rd); motion tokens stay.
  const int64_t roll = std::max<int64_t>(0, block.first_frame - (kReferencePosition - rd));
  a.sink_rope = rope_on_device(rope_table(shift_frames(sink.groups, roll, 1), cfg_.dim / cfg_.num_heads), device_);
  return a;
}

void S2vDit::step_layers(StepActivations& a, const BlockConditioning& block, StepKvCache& kv, const CondCache& sink,
                         const PromptCache& prompt, DitTrace* trace) const {
  const int64_t tokens = a.frames * a.grid_h * a.grid_w;
  if (sink.tokens == 0 || sink.k.size() != w_.blocks.size()) throw std::invalid_argument("forward needs a sink prefill");
  if (prompt.layers.size() != w_.blocks.size()) throw std::invalid_argument("forward needs an encoded prompt");
  if (kv.k.size() != w_.blocks.size() || kv.capacity < tokens || kv.capacity % tokens)
    throw std::invalid_argument("KV cache must hold a whole number of blocks of " + std::to_string(tokens) + " tokens");
  nn::InferenceGuard guard(options_.record_autograd);
  // Ring write position; once the ring has wrapped, all of it is history.
  const int64_t slot = a.current_start % kv.capacity;
  const int64_t active = a.current_start >= kv.capacity ? kv.capacity : a.current_start + tokens;
  const BlockOptions opts{dtype_, options_.norm3_bf16_round_trip};
  for (size_t i = 0; i < w_.blocks.size(); ++i) {
    const SelfAttentionCore attend = [&](const Qkv& qkv) {
      const at::Tensor q = apply_rope(qkv.q, block.rope, dtype_);
      kv.k[i].narrow(0, slot, tokens).copy_(apply_rope(qkv.k, block.rope, dtype_));
      kv.v[i].narrow(0, slot, tokens).copy_(qkv.v);
      const at::Tensor k = at::cat({kv.k[i].narrow(0, 0, active), apply_rope(sink.k[i], a.sink_rope, dtype_)});
      const at::Tensor v = at::cat({kv.v[i].narrow(0, 0, active), sink.v[i]});
      return attend_heads(q, k, v);
    };
    a.hidden = block_forward(w_.blocks[i], cfg_, a.hidden, block_modulation(w_.blocks[i], a.e0), attend,
                             prompt.layers[i], opts);
    if (trace) trace->block_out.push_back(a.hidden.reshape({1, tokens, cfg_.dim}).to(at::kFloat));
    const int64_t layer = layer_begin() + static_cast<int64_t>(i);
    const auto injector = std::find_if(w_.injectors.begin(), w_.injectors.end(),
                                       [&](const AudioInjectorWeights& j) { return j.after_layer == layer; });
    if (injector != w_.injectors.end())
      a.hidden = inject_audio(*injector, cfg_, a.hidden, block.audio_global, block.audio_local, dtype_);
    if (trace) trace->after_audio.push_back(a.hidden.reshape({1, tokens, cfg_.dim}).to(at::kFloat));
  }
}

at::Tensor S2vDit::step_output(const StepActivations& a) const {
  require_head("step_output");
  nn::InferenceGuard guard(options_.record_autograd);
  const at::Tensor out = output_head(w_, cfg_, a.hidden, a.e, dtype_);
  return unpatchify(out, a.frames, a.grid_h, a.grid_w, cfg_.out_dim);
}

at::Tensor S2vDit::forward(const at::Tensor& x, float t, const BlockConditioning& block, StepKvCache& kv,
                           const CondCache& sink, const PromptCache& prompt, int64_t current_start, int rd,
                           DitTrace* trace) const {
  StepActivations a = step_input(x, t, block, sink, current_start, rd);
  step_layers(a, block, kv, sink, prompt, trace);
  return step_output(a);
}

namespace {

RopeTable rope_to(const RopeTable& t, at::Device device) { return {t.cos.to(device), t.sin.to(device)}; }
at::Tensor maybe_to(const at::Tensor& t, at::Device device) { return t.defined() ? t.to(device) : t; }

}  // namespace

StepActivations to_device(const StepActivations& a, at::Device device) {
  StepActivations b = a;
  b.hidden = maybe_to(a.hidden, device);
  b.e0 = maybe_to(a.e0, device);
  b.e = maybe_to(a.e, device);
  b.sink_rope = rope_to(a.sink_rope, device);
  return b;
}

SinkActivations to_device(const SinkActivations& a, at::Device device) {
  SinkActivations b = a;
  b.hidden = maybe_to(a.hidden, device);
  b.e0 = maybe_to(a.e0, device);
  b.rope = rope_to(a.rope, device);
  return b;
}

BlockConditioning to_device(const BlockConditioning& c, at::Device device) {
  BlockConditioning d = c;
  d.audio_global = maybe_to(c.audio_global, device);
  d.audio_local = maybe_to(c.audio_local, device);
  d.pose = maybe_to(c.pose, device);
  d.rope = rope_to(c.rope, device);
  return d;
}

}  // namespace la::models

#include "engine/parallel/memory_plan.h"

#include <c10/core/ScalarType.h>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "engine/models/s2v_dit/rope.h"

namespace la::parallel {
namespace {

using models::DitLayerRange;
using models::S2vDitConfig;

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

int elem(at::ScalarType t) { return static_cast<int>(c10::elementSize(t)); }

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }
bool ends_with(const std::string& s, const std::string& p) {
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

// make_dit_weights' float32 islands, and CausalAudioEncoder (always float32).
bool float32_tensor(const std::string& name) {
  if (starts_with(name, "time_embedding.") || starts_with(name, "time_projection.") || starts_with(name, "head.") ||
      starts_with(name, "casual_audio_encoder."))
    return true;
  return starts_with(name, "blocks.") && ends_with(name, ".modulation");
}

// The weights convert_to_fp8 quantises: block self/cross q,k,v,o and ffn.0/2,
// injector q,k,v,o and AdaLN linears (their biases stay).
bool fp8_weight(const std::string& name) {
  if (!ends_with(name, ".weight")) return false;
  if (starts_with(name, "blocks.")) {
    for (const char* l : {".self_attn.q.", ".self_attn.k.", ".self_attn.v.", ".self_attn.o.", ".cross_attn.q.",
                          ".cross_attn.k.", ".cross_attn.v.", ".cross_attn.o.", ".ffn.0.", ".ffn.2."})
      if (name.find(l) != std::string::npos) return true;
    return false;
  }
  if (starts_with(name, "audio_injector.injector_adain_layers.")) return true;
  if (starts_with(name, "audio_injector.injector."))
    for (const char* l : {".q.weight", ".k.weight", ".v.weight", ".o.weight"})
      if (ends_with(name, l)) return true;
  return false;
}

// ---- The activation replay -------------------------------------------------
// Byte counts allocated and freed in the order the engine's code allocates
// and frees tensors. A T is a handle on an allocation, shared like a tensor's
// storage; it frees its bytes when the last handle goes, so writing the replay
// with the engine's statements gives the engine's temporary lifetimes.

class Sim {
 public:
  void alloc(int64_t n) {
    live_ += n;
    if (live_ > peak_) {
      peak_ = live_;
      peak_at_ = at_;
    }
  }
  void release(int64_t n) { live_ -= n; }
  void at(const std::string& where) { at_ = where; }
  int64_t live() const { return live_; }
  int64_t peak() const { return peak_; }
  const std::string& peak_at() const { return peak_at_; }

 private:
  int64_t live_ = 0, peak_ = 0;
  std::string at_, peak_at_;
};

class T {
 public:
  T() = default;
  T(int64_t numel, int bytes) : numel_(numel), bytes_(bytes) {}  // an existing tensor's shape: no allocation
  T(Sim& s, int64_t numel, int bytes) : numel_(numel), bytes_(bytes), buf_(std::make_shared<Buf>(s, numel * bytes)) {}
  int64_t numel() const { return numel_; }
  int bytes() const { return bytes_; }
  void reset() { buf_.reset(); }

 private:
  struct Buf {
    Buf(Sim& s, int64_t n) : sim(s), n(n) { sim.alloc(n); }
    ~Buf() { sim.release(n); }
    Buf(const Buf&) = delete;
    Buf& operator=(const Buf&) = delete;
    Sim& sim;
    int64_t n;
  };
  int64_t numel_ = 0;
  int bytes_ = 0;
  std::shared_ptr<Buf> buf_;
};

struct Replay {
  Sim& sim;
  const S2vDitConfig& cfg;
  int b;     // model dtype bytes
  bool fp8;

  T make(int64_t numel, int bytes) const { return T(sim, numel, bytes); }
  // Tensor::to(dtype): the same tensor when the dtype does not change.
  T to(const T& x, int bytes) const { return x.bytes() == bytes ? x : make(x.numel(), bytes); }
  T like(const T& x, int bytes) const { return make(x.numel(), bytes); }

  // nn::fp8_linear's quantize(t): f = t.to(float); amax; q = (f*s).clamp().to(e4m3).
  T fp8_quantize(const T& t) const {
    const T f = to(t, 4);
    { const T abs = like(f, 4); }  // f.abs() inside the amax statement
    const T mul = like(f, 4), clamp = like(f, 4);
    return like(f, 1);
  }
  // apply_linear of x [rows, in] -> [rows, out]; `quantised` for the linears convert_to_fp8 converts.
  T linear(const T& x, int64_t in, int64_t out, bool quantised, int out_bytes) const {
    const int64_t rows = x.numel() / in;
    if (!(quantised && fp8)) return make(rows * out, out_bytes);
    const T xq = fp8_quantize(x);
    const T y = make(rows * out, 2);  // _scaled_mm's bf16 product
    return to(y, x.bytes());
  }
  T linear(const T& x, int64_t in, int64_t out) const { return linear(x, in, out, true, b); }

  T layer_norm_f32(const T& x) const {
    const T xf = to(x, 4);
    return like(x, 4);
  }
  T rms_norm(const T& x) const {
    const T f = to(x, 4);
    T normed;
    { const T pow = like(f, 4); normed = like(f, 4); }
    const T cast = to(normed, b);
    return like(x, b);  // normed.to(dtype) * weight
  }
  // apply_rope: in float64, the six half-size products and the stack alive in one statement.
  T rope(const T& x) const { return rope(x.numel()); }
  T rope(int64_t numel) const {  // of a tensor in the model dtype
    const T pairs = make(numel, 8);
    T out;
    {
      const T rc = make(numel / 2, 8), is = make(numel / 2, 8), d = make(numel / 2, 8);
      const T rs = make(numel / 2, 8), ic = make(numel / 2, 8), s = make(numel / 2, 8);
      out = make(numel, 8);
    }
    const T f = to(out, 4);
    return to(f, b);
  }
  // Flash attention: output [Lq, heads, head_dim] + a float32 log-sum-exp per query and head.
  T attention(int64_t lq) const {
    T out = make(lq * cfg.dim, b);
    const T lse = make(lq * cfg.num_heads, 4);
    return out;
  }

  // block_forward with its self-attention core; `history` = ring tokens
  // attended besides the block's own (none in the prefill), `sink` the sink
  // tokens. prefill: the core clones K and V into the sink cache (`kept`).
  T block(const T& x_in, int64_t groups, int64_t history, int64_t sink, bool prefill, std::vector<T>& kept) const {
    const int64_t D = cfg.dim, L = x_in.numel() / D;
    const T mod = make(groups * 6 * D, 4);  // block_modulation's argument
    sim.at("self-attention input");
    T a = to(to(layer_norm_f32(x_in), b), 4);
    {
      const T mul = like(a, 4), add = like(a, 4);
      a = to(add, b);
    }
    T q_lin = linear(a, D, D);
    const T q = rms_norm(q_lin);
    T k_lin = linear(a, D, D);
    const T k = rms_norm(k_lin);
    const T v = linear(a, D, D);
    q_lin.reset();
    k_lin.reset();
    T y;
    {
      sim.at("self-attention core");
      T core;
      if (prefill) {
        kept.push_back(like(k, b));  // sink.k.push_back(qkv.k.clone())
        kept.push_back(like(v, b));
        const T rq = rope(q);
        const T rk = rope(k);
        core = attention(L);
      } else {
        const T rq = rope(q);
        { const T rk = rope(k); }  // copied into the ring
        sim.at("self-attention core (sink RoPE)");
        const T rk_cat = [&] {
          const T rs = rope(sink * D);  // of the cached sink K
          return make((history + sink) * D, b);
        }();
        const T rv_cat = make((history + sink) * D, b);
        sim.at("self-attention core (attention)");
        core = attention(L);
      }
      sim.at("self-attention output");
      y = linear(core, D, D);
    }
    T x;
    {
      const T xf = to(x_in, 4), yf = to(y, 4), mul = like(y, 4);
      x = like(y, 4);
    }
    sim.at("cross-attention");
    T c;
    {
      const T rt = like(x, 2), f = to(rt, 4), ln = like(x, 4), back = to(ln, 2);
      c = to(back, b);
    }
    T cq;
    { const T lin = linear(c, D, D); cq = rms_norm(lin); }
    const T cross = attention(L);
    {
      const T o = linear(cross, D, D);
      const T of = to(o, 4);
      x = like(x, 4);
    }
    sim.at("FFN");
    T bb;
    {
      const T ln = layer_norm_f32(x), mul = like(x, 4), add = like(x, 4);
      bb = to(add, b);
    }
    T f;
    {
      const T h = linear(bb, D, cfg.ffn_dim);
      const T g = like(h, b);
      f = linear(g, cfg.ffn_dim, D);
    }
    {
      const T ff = to(f, 4), mul = like(f, 4);
      x = like(f, 4);
    }
    sim.at("block output");
    return to(x, b);
  }

  T inject_audio(const T& hidden, int64_t frames) const {
    const int64_t D = cfg.dim;
    sim.at("audio injector");
    const T m = [&] {
      const T g = b == 4 ? T() : make(frames * D, b);  // global.to(dt)
      const T s = make(frames * D, b);
      const T lin = linear(s, D, 2 * D);
      return to(lin, 4);
    }();
    T a;
    {
      const T ln = layer_norm_f32(hidden), mul = like(hidden, 4), add = like(hidden, 4);
      a = to(add, b);
    }
    const int64_t audio_tokens = frames * (cfg.num_audio_token + 1);
    const T audio = b == 4 ? T() : make(audio_tokens * D, b);  // local.to(dt)
    T q;
    { const T lin = linear(a, D, D); q = rms_norm(lin); }
    T k;
    const T audio_in(audio_tokens * D, b);  // audio, as the linears read it
    { const T lin = linear(audio_in, D, D); k = rms_norm(lin); }
    const T v = linear(audio_in, D, D);
    const T o = attention(hidden.numel() / D);
    const T lin = linear(o, D, D);
    return like(hidden, b);
  }
};

int64_t rope_bytes(int64_t tokens, int64_t head_dim) { return tokens * head_dim * 8; }  // cos + sin, float64

bool injector_after(const S2vDitConfig& cfg, int64_t layer) {
  return std::find(cfg.audio_inject_layers.begin(), cfg.audio_inject_layers.end(), layer) != cfg.audio_inject_layers.end();
}

}  // namespace

int64_t planned_weight_bytes(const S2vDitConfig& cfg, const DitLayerRange& range, at::ScalarType dtype, bool fp8) {
  int64_t n = 0;
  for (const auto& spec : models::s2v_dit_tensor_specs(cfg)) {
    if (!models::s2v_dit_tensor_in_range(spec.name, cfg, range)) continue;
    if (fp8 && fp8_weight(spec.name)) n += models::numel(spec) + 4;  // e4m3 values + a float32 scale
    else n += models::numel(spec) * (float32_tensor(spec.name) ? 4 : elem(dtype));
  }
  return n;
}

int64_t planned_sink_tokens(int64_t latent_h, int64_t latent_w) {
  int64_t n = 0;
  for (const auto& g : models::sink_groups(latent_h, latent_w))
    n += (g.end[0] - g.start[0]) * (g.end[1] - g.start[1]) * (g.end[2] - g.start[2]);
  return n;
}

int64_t planned_kv_bytes(const S2vDitConfig& cfg, int64_t tokens, at::ScalarType dtype) {
  return 2 * tokens * cfg.dim * elem(dtype);  // K and V, [tokens, heads, head_dim] each
}

ActivationPeak planned_step_activations(const S2vDitConfig& cfg, const DitLayerRange& range,
                                        const ActivationShape& s, at::ScalarType dtype, bool fp8, bool cpu) {
  Sim sim;
  const Replay r{sim, cfg, elem(dtype), fp8};
  const int64_t D = cfg.dim, hd = cfg.dim / cfg.num_heads, L = s.frames * s.grid_h * s.grid_w;
  const int64_t begin = range.begin, end = range.end_of(cfg);
  const bool stem = begin == 0, head = end == cfg.num_layers;
  if (stem) {
    // condition_block's audio encoder (float32, once per block, before the
    // step): the block's 4F frames behind 73 copies of the first (the cat
    // lives through the encoder), the layer-weighted sum's temporaries, and
    // on the CPU oneDNN's reordered copy of the largest conv weight (conv3,
    // dim x dim/2 x 3), made per call; cuDNN does not copy weights (its
    // workspaces are in the reserve). Measured at full width, 1 block,
    // 256x128 px: 177.1 MB, dominated by that reorder (157.3 MB).
    sim.at("audio encoder");
    const int64_t frames_in = 73 + 4 * s.frames;
    const T cat = r.make(models::kAudioHiddenStates * cfg.audio_dim * frames_in, 4);
    {
      const T weighted = r.make(models::kAudioHiddenStates * cfg.audio_dim * frames_in, 4);
      const T divided = r.make(models::kAudioHiddenStates * cfg.audio_dim * frames_in, 4);
    }
    const int64_t conv_out = cfg.dim / 4 * cfg.num_audio_token * frames_in;  // conv1_local's output
    const T local = r.make(conv_out, 4), normed = r.make(conv_out, 4), silu = r.make(conv_out, 4);
    if (cpu) {
      const T reorder = r.make(cfg.dim * (cfg.dim / 2) * 3, 4);
    }
  }
  // What the step reads besides the hidden states: the block's RoPE table,
  // audio tokens, time conditioning and the rolling sink's table.
  sim.at("block conditioning");
  const T cond_rope = r.make(rope_bytes(L, hd), 1);
  const T audio_global = r.make(s.frames * D, 4), audio_local = r.make(s.frames * (cfg.num_audio_token + 1) * D, 4);
  T hidden;
  if (stem) {
    sim.at("step input");
    T h;
    {
      const T conv = r.make(L * D, r.b);
      h = r.make(L * D, r.b);  // + pose
    }
    hidden = r.make(L * D, r.b);
  } else {
    sim.at("received activations");  // the pose tokens stay with the stem
    hidden = r.make(L * D, r.b);
  }
  const T e0 = r.make(s.frames * 6 * D, 4), e = r.make(s.frames * D, 4);
  const T sink_rope = r.make(rope_bytes(s.sink_tokens, hd), 1);
  std::vector<T> kept;
  for (int64_t layer = begin; layer < end; ++layer) {
    hidden = r.block(hidden, s.frames, s.ring_tokens, s.sink_tokens, false, kept);
    if (injector_after(cfg, layer)) hidden = r.inject_audio(hidden, s.frames);
  }
  if (head) {
    sim.at("head");
    T n;
    {
      const T ln = r.layer_norm_f32(hidden), cast = r.to(ln, r.b);
      n = r.to(cast, 4);
    }
    const T mul = r.like(n, 4), add = r.like(n, 4);
    const T out = r.linear(add, D, cfg.out_dim * 4, false, 4);
  }
  return {sim.peak(), sim.peak_at()};
}

ActivationPeak planned_prefill_activations(const S2vDitConfig& cfg, const DitLayerRange& range,
                                           const ActivationShape& s, at::ScalarType dtype, bool fp8, bool cpu) {
  (void)cpu;
  Sim sim;
  const Replay r{sim, cfg, elem(dtype), fp8};
  const int64_t D = cfg.dim, hd = cfg.dim / cfg.num_heads, S = s.sink_tokens;
  const int64_t begin = range.begin, end = range.end_of(cfg);
  const int64_t frame_tokens = s.grid_h * s.grid_w;
  T hidden;
  sim.at("sink input");
  if (begin == 0) {
    T ref, motion;
    { const T conv = r.make(frame_tokens * D, r.b); ref = r.like(conv, r.b); }
    {
      const T packed = r.make(r.b * cfg.in_dim * 19 * s.grid_h * s.grid_w * 4, 1);
      // patchify of the post, 2x and 4x buckets (sink_groups 1..3), then their cat.
      const auto groups = models::sink_groups(2 * s.grid_h, 2 * s.grid_w);
      auto tokens = [&](size_t i) {
        const auto& g = groups.at(i);
        return (g.end[0] - g.start[0]) * (g.end[1] - g.start[1]) * (g.end[2] - g.start[2]);
      };
      const T p1 = r.make(tokens(1) * D, r.b), p2 = r.make(tokens(2) * D, r.b), p4 = r.make(tokens(3) * D, r.b);
      const T cat = r.make((S - frame_tokens) * D, r.b);
      motion = r.like(cat, r.b);
    }
    hidden = r.make(S * D, r.b);
  } else {
    hidden = r.make(S * D, r.b);
  }
  const T rope = r.make(rope_bytes(S, hd), 1), e0 = r.make(6 * D, 4);
  std::vector<T> kept;
  for (int64_t layer = begin; layer < end; ++layer) hidden = r.block(hidden, 1, 0, S, true, kept);
  // The clones are the sink cache, counted on its own line.
  int64_t sink = 0;
  for (const T& t : kept) sink += t.numel() * t.bytes();
  return {sim.peak() - sink, sim.peak_at()};
}

int64_t planned_vae_weight_bytes(const models::WanVaeConfig& cfg, at::ScalarType dtype) {
  int64_t n = 0;
  for (const auto& spec : models::wan_vae_tensor_specs(cfg)) n += models::numel(spec);
  return (n + 2 * cfg.z_dim) * elem(dtype);  // + the latent mean and 1/std
}

int64_t planned_vae_decode_state_bytes(const models::WanVaeConfig& cfg, int64_t h, int64_t w, at::ScalarType dtype) {
  // Every cached conv keeps its input's last two frames: the residual convs
  // and the head see norm_silu's float32 output, conv1 and the temporal
  // upsamples the model dtype (wan_vae/blocks.cpp).
  const int64_t dt = elem(dtype);
  auto slot = [](int64_t c, int64_t hh, int64_t ww, int64_t bytes) { return c * 2 * hh * ww * bytes; };
  std::vector<int64_t> dims = {cfg.dim * cfg.dim_mult.back()};
  for (auto it = cfg.dim_mult.rbegin(); it != cfg.dim_mult.rend(); ++it) dims.push_back(cfg.dim * *it);
  int64_t n = slot(cfg.z_dim, h, w, dt) + 4 * slot(dims[0], h, w, 4);  // conv1, middle (2 residuals)
  int64_t hh = h, ww = w;
  const size_t stages = dims.size() - 1;
  for (size_t i = 0; i < stages; ++i) {
    int64_t in = (i >= 1 && i <= 3) ? dims[i] / 2 : dims[i];
    const int64_t out = dims[i + 1];
    for (int64_t r = 0; r <= cfg.num_res_blocks; ++r, in = out) n += slot(in, hh, ww, 4) + slot(out, hh, ww, 4);
    if (i + 1 < cfg.dim_mult.size()) {
      const size_t up = cfg.temporal_downsample.size() - 1 - i;  // temporal upsample = downsample reversed
      if (cfg.temporal_downsample.at(up)) n += slot(out, hh, ww, dt);
      hh *= 2;
      ww *= 2;
    }
  }
  return n + slot(dims.back(), hh, ww, 4);  // head
}

int64_t planned_umt5_weight_bytes(const models::Umt5Config& cfg, at::ScalarType dtype) {
  int64_t n = 0;
  for (const auto& spec : models::umt5_tensor_specs(cfg)) n += models::numel(spec);
  return n * elem(dtype);
}

int64_t planned_wav2vec2_weight_bytes(const models::Wav2Vec2Config& cfg, at::ScalarType dtype) {
  const std::string pos_conv = "wav2vec2.encoder.pos_conv_embed.conv.weight_";
  int64_t n = 0;
  for (const auto& spec : models::wav2vec2_tensor_specs(cfg)) {
    if (spec.name.rfind("lm_head.", 0) == 0 || spec.name == "wav2vec2.masked_spec_embed") continue;  // not kept
    if (spec.name == pos_conv + "g") continue;  // folded into weight_v's shape: one weight
    n += models::numel(spec);
  }
  return n * elem(dtype);
}

double planned_forward_flops(const S2vDitConfig& c, const DitLayerRange& range, int64_t tokens, int64_t self_keys) {
  const double l = static_cast<double>(tokens), d = static_cast<double>(c.dim);
  const double per_layer = 8 * l * d * d + 4 * l * static_cast<double>(self_keys) * d + 4 * l * d * d +
                           4 * l * static_cast<double>(c.text_len) * d + 4 * l * d * static_cast<double>(c.ffn_dim);
  const double per_injector = 4 * l * d * d;
  const int64_t begin = range.begin, end = range.end_of(c);
  double f = static_cast<double>(end - begin) * per_layer;
  for (auto layer : c.audio_inject_layers)
    if (layer >= begin && layer < end) f += per_injector;
  if (end == c.num_layers) f += 2 * l * d * 4 * static_cast<double>(c.out_dim);
  return f;
}


namespace {

std::vector<int> dit_devices(const PlanRequest& r) {
  std::vector<int> out;
  for (int d = 0; d < static_cast<int>(r.device_gib.size()); ++d)
    if (d != r.vae_device || r.device_gib.size() == 1) out.push_back(d);
  return out;
}

MemoryPlan plan_with_split(const PlanRequest& r, DitSplit split) {
  MemoryPlan p;
  p.request = r;
  p.split = split;
  const S2vDitConfig& cfg = r.cfg;
  const int64_t latent_h = r.height / 8, latent_w = r.width / 8;
  ActivationShape shape;
  shape.frames = r.frames_per_block;
  shape.grid_h = latent_h / 2;
  shape.grid_w = latent_w / 2;
  p.block_tokens = shape.frames * shape.grid_h * shape.grid_w;
  p.ring_tokens = shape.ring_tokens = r.blocks_per_clip * p.block_tokens;
  p.sink_tokens = shape.sink_tokens = planned_sink_tokens(latent_h, latent_w);
  const std::vector<int> dit = dit_devices(r);
  std::vector<StageAssignment> stages;
  try {
    stages = assign_stages(split, static_cast<int64_t>(dit.size()), cfg.num_layers, r.steps);
  } catch (const std::invalid_argument& e) {
    p.error = e.what();
  }
  const int64_t vae_weights = planned_vae_weight_bytes(r.vae, r.dtype);
  double slowest = 0;
  for (int d = 0; d < static_cast<int>(r.device_gib.size()); ++d) {
    DevicePlan dp;
    dp.device = d;
    dp.capacity = static_cast<int64_t>(r.device_gib[d] * kGiB);
    dp.reserve = r.cpu ? 0 : static_cast<int64_t>(r.reserve_gib * kGiB);
    const auto it = std::find(dit.begin(), dit.end(), d);
    if (it != dit.end() && !stages.empty()) {
      dp.dit = true;
      dp.stage = stages[static_cast<size_t>(it - dit.begin())];
      const DitLayerRange& range = dp.stage.layers;
      const int64_t blocks = range.end_of(cfg) - range.begin;
      const int64_t step_count = dp.stage.end_step - dp.stage.first_step;
      dp.weights = planned_weight_bytes(cfg, range, r.dtype, r.fp8);
      dp.kv_rings = step_count * blocks * planned_kv_bytes(cfg, p.ring_tokens, r.dtype);
      dp.sink_cache = blocks * planned_kv_bytes(cfg, p.sink_tokens, r.dtype);
      dp.prompt_kv = blocks * planned_kv_bytes(cfg, cfg.text_len, r.dtype);
      dp.change_copy = dp.sink_cache + dp.prompt_kv;
      dp.step = planned_step_activations(cfg, range, shape, r.dtype, r.fp8, r.cpu);
      dp.prefill = planned_prefill_activations(cfg, range, shape, r.dtype, r.fp8, r.cpu);
      dp.flops_per_block = static_cast<double>(step_count) *
                           planned_forward_flops(cfg, range, p.block_tokens, p.ring_tokens + p.sink_tokens);
      slowest = std::max(slowest, dp.flops_per_block);
      // umT5 counts with offload too: offload frees it between prompt
      // changes, but each change loads it again beside the DiT (and NULL->READY
      // loads both), so the device's peak is the same.
      if (it == dit.begin()) dp.encoders = vae_weights + planned_umt5_weight_bytes(r.t5, r.dtype);
    }
    if (d == r.audio_device) dp.audio_encoder = planned_wav2vec2_weight_bytes(r.wav2vec2, r.dtype);
    if (d == r.vae_device) {
      // The generator's VAE on the same device is the same loaded model.
      const bool shared = !dit.empty() && dit.front() == d;
      dp.vae_decoder = (shared ? 0 : vae_weights) + planned_vae_decode_state_bytes(r.vae, latent_h, latent_w, r.dtype);
    }
    dp.total = dp.weights + dp.kv_rings + dp.sink_cache + dp.prompt_kv + dp.change_copy + dp.peak_activations() +
               dp.vae_decoder + dp.encoders + dp.audio_encoder + dp.reserve;
    p.devices.push_back(dp);
  }
  if (r.tflops > 0 && slowest > 0)
    p.frames_per_second = static_cast<double>(4 * r.frames_per_block) / (slowest / (r.tflops * 1e12));
  p.fits = p.error.empty() && std::all_of(p.devices.begin(), p.devices.end(), [](const DevicePlan& d) { return d.fits(); });
  return p;
}

std::string gib(int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / kGiB);
  return buf;
}

const DevicePlan* largest(const MemoryPlan& p) {
  const DevicePlan* best = nullptr;
  for (const auto& d : p.devices)
    if (!best || static_cast<double>(d.total) / static_cast<double>(std::max<int64_t>(d.capacity, 1)) >
                     static_cast<double>(best->total) / static_cast<double>(std::max<int64_t>(best->capacity, 1)))
      best = &d;
  return best;
}

}  // namespace

MemoryPlan plan_memory(const PlanRequest& r) {
  if (r.width < 16 || r.height < 16 || r.width % 16 || r.height % 16)
    throw std::invalid_argument("size " + std::to_string(r.width) + "*" + std::to_string(r.height) +
                                " must be positive multiples of 16 (the VAE's 8x and the DiT's 2x2 patch)");
  if (r.device_gib.empty()) throw std::invalid_argument("the plan needs at least one device");
  for (double g : r.device_gib)
    if (!(g > 0)) throw std::invalid_argument("device capacities must be positive GiB");
  if (r.vae_device < -1 || r.vae_device >= static_cast<int>(r.device_gib.size()))
    throw std::invalid_argument("vae device " + std::to_string(r.vae_device) + " is not one of the " +
                                std::to_string(r.device_gib.size()) + " devices");
  if (r.audio_device < -1 || r.audio_device >= static_cast<int>(r.device_gib.size()))
    throw std::invalid_argument("audio device " + std::to_string(r.audio_device) + " is not one of the " +
                                std::to_string(r.device_gib.size()) + " devices");
  if (r.steps < 1 || r.blocks_per_clip < 1 || r.frames_per_block < 1)
    throw std::invalid_argument("steps, blocks_per_clip and frames_per_block must be >= 1");
  if (r.split != DitSplit::kAuto) return plan_with_split(r, r.split);
  // DESIGN §6: steps when a whole replica and its caches fit every device, else layers.
  MemoryPlan steps = plan_with_split(r, DitSplit::kSteps);
  if (steps.fits) return steps;
  MemoryPlan layers = plan_with_split(r, DitSplit::kLayers);
  return layers.error.empty() || !steps.error.empty() ? layers : steps;
}

std::string format_plan(const MemoryPlan& p) {
  const PlanRequest& r = p.request;
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line,
                "S2V DiT %lld blocks, dim %lld, %s%s, %lldx%lld px, %d steps, block %lld tokens, KV ring %lld, sink "
                "%lld, text %lld\n",
                static_cast<long long>(r.cfg.num_layers), static_cast<long long>(r.cfg.dim),
                c10::toString(r.dtype), r.fp8 ? " + fp8 linears" : "", static_cast<long long>(r.width),
                static_cast<long long>(r.height), r.steps, static_cast<long long>(p.block_tokens),
                static_cast<long long>(p.ring_tokens), static_cast<long long>(p.sink_tokens),
                static_cast<long long>(r.cfg.text_len));
  out += line;
  if (r.offload)
    out += "offload: umT5 is held only while a prompt is encoded, but then beside the DiT: the encoders line counts it\n";
  if (!p.error.empty()) out += "layout refused: " + p.error + "\n";
  out += "GiB per device      ";
  for (const auto& d : p.devices) {
    std::snprintf(line, sizeof line, "%10s", ("dev " + std::to_string(d.device)).c_str());
    out += line;
  }
  out += "\n";
  auto row = [&](const char* name, auto value) {
    std::snprintf(line, sizeof line, "%-20s", name);
    out += line;
    for (const auto& d : p.devices) {
      std::snprintf(line, sizeof line, "%10s", value(d).c_str());
      out += line;
    }
    out += "\n";
  };
  row("stage", [&](const DevicePlan& d) -> std::string {
    if (!d.dit) return d.device == r.vae_device ? "vae" : "-";
    if (p.split == DitSplit::kSteps)
      return "s" + std::to_string(d.stage.first_step) + "-" + std::to_string(d.stage.end_step - 1);
    return "b" + std::to_string(d.stage.layers.begin) + "-" + std::to_string(d.stage.layers.end - 1);
  });
  row("weights", [](const DevicePlan& d) { return gib(d.weights); });
  row("KV rings", [](const DevicePlan& d) { return gib(d.kv_rings); });
  row("sink cache", [](const DevicePlan& d) { return gib(d.sink_cache); });
  row("prompt K/V", [](const DevicePlan& d) { return gib(d.prompt_kv); });
  row("change copy", [](const DevicePlan& d) { return gib(d.change_copy); });
  row("peak activations", [](const DevicePlan& d) { return gib(d.peak_activations()); });
  row("VAE decoder", [](const DevicePlan& d) { return gib(d.vae_decoder); });
  row("encoders", [](const DevicePlan& d) { return gib(d.encoders); });
  row("audio encoder", [](const DevicePlan& d) { return gib(d.audio_encoder); });
  row("reserve", [](const DevicePlan& d) { return gib(d.reserve); });
  row("total", [](const DevicePlan& d) { return gib(d.total); });
  row("capacity", [](const DevicePlan& d) { return gib(d.capacity); });
  row("fits", [](const DevicePlan& d) -> std::string { return d.fits() ? "yes" : "NO"; });
  row("TFLOP per block", [](const DevicePlan& d) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", d.flops_per_block / 1e12);
    return std::string(b);
  });
  if (p.frames_per_second > 0) {
    std::snprintf(line, sizeof line, "at %.0f TFLOP/s per device: %.1f frames/s (slowest stage; 25 needed for real time)\n",
                  r.tflops, p.frames_per_second);
    out += line;
  }
  const DevicePlan* big = largest(p);
  std::snprintf(line, sizeof line, "fits: %s, split: %s, largest device: %s of %s GiB", p.fits ? "yes" : "no",
                dit_split_name(p.split), big ? gib(big->total).c_str() : "0.0", big ? gib(big->capacity).c_str() : "0.0");
  out += line;
  return out;
}

std::string plan_suggestion(const MemoryPlan& p) {
  if (p.fits) return "";
  const PlanRequest& r = p.request;
  std::vector<std::string> ideas;
  auto fits = [](PlanRequest q) {
    try {
      return plan_memory(q).fits;
    } catch (const std::invalid_argument&) {
      return false;
    }
  };
  if (r.split != DitSplit::kLayers) {
    PlanRequest q = r;
    q.split = DitSplit::kLayers;
    if (fits(q)) ideas.push_back("dit-split=layers");
  }
  if (!r.fp8) {
    PlanRequest q = r;
    q.fp8 = true;
    if (fits(q)) ideas.push_back("fp8=true (Ada/Hopper)");
  }
  {
    // More devices of the smallest DiT device's size, layers split.
    double smallest = 0;
    for (int d : dit_devices(r)) smallest = smallest == 0 ? r.device_gib[d] : std::min(smallest, r.device_gib[d]);
    PlanRequest q = r;
    q.split = DitSplit::kLayers;
    for (int extra = 1; extra <= 16; ++extra) {
      q.device_gib.push_back(smallest);
      if (q.vae_device == static_cast<int>(q.device_gib.size()) - 2) {  // the VAE's device stays the last
        std::swap(q.device_gib[q.device_gib.size() - 1], q.device_gib[q.device_gib.size() - 2]);
        if (q.audio_device == q.vae_device) q.audio_device += 1;
        q.vae_device += 1;
      }
      if (fits(q)) {
        ideas.push_back(std::to_string(extra) + " more " + gib(static_cast<int64_t>(smallest * kGiB)) +
                        " GiB device(s) with dit-split=layers");
        break;
      }
    }
  }
  {
    // The largest smaller size of the same aspect (multiples of 16) that fits.
    PlanRequest q = r;
    for (double f = 0.95; f > 0.3; f -= 0.05) {
      q.width = std::max<int64_t>(16, static_cast<int64_t>(static_cast<double>(r.width) * f) / 16 * 16);
      q.height = std::max<int64_t>(16, static_cast<int64_t>(static_cast<double>(r.height) * f) / 16 * 16);
      if (fits(q)) {
        ideas.push_back("size=" + std::to_string(q.width) + "*" + std::to_string(q.height));
        break;
      }
    }
  }
  const DevicePlan* big = largest(p);
  std::string why = p.error.empty() ? "device " + std::to_string(big->device) + " needs " + gib(big->total) +
                                          " of " + gib(big->capacity) + " GiB"
                                    : p.error;
  if (ideas.empty()) return why + "; no single change (layers split, fp8, more devices, smaller size) fits";
  std::string s = why + "; what would fit: ";
  for (size_t i = 0; i < ideas.size(); ++i) s += (i ? ", or " : "") + ideas[i];
  return s;
}

}  // namespace la::parallel

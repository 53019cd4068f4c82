// The planner (engine/parallel/memory_plan.h) against what the engine really
// allocates: weights of the parts assign_stages gives (tiny and full width, fp32,
// bf16, fp8), the KV rings, sink and prompt caches, and the activation peak of
// a denoising step and a sink prefill measured by a counting CPU allocator at
// full width; and la-plan's output and errors.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/core/InferenceMode.h>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>
#include <string>

#include "engine/io/weight_store.h"
#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/models/umt5/encoder.h"
#include "engine/models/wan_vae/wan_vae.h"
#include "engine/models/wav2vec2/wav2vec2.h"
#include "engine/nn/fp8_linear.h"
#include "engine/parallel/memory_plan.h"
#include "engine/parallel/partition.h"
#include "tools/bench/dit_flops.h"
#include "tools/mkcheckpoint/random_weights.h"
#include "tools/mkcheckpoint/scales.h"

using namespace la;

namespace {

std::map<std::string, at::Tensor> random_weights(const models::S2vDitConfig& cfg, at::ScalarType dtype) {
  std::map<std::string, at::Tensor> t;
  for (const auto& spec : models::s2v_dit_tensor_specs(cfg)) t[spec.name] = tools::random_tensor(spec, 7, dtype);
  return t;
}

// Constant weights: bytes and allocations do not depend on the values, and
// full-width random tensors take minutes to draw on CI's two cores.
std::map<std::string, at::Tensor> constant_weights(const models::S2vDitConfig& cfg, at::ScalarType dtype) {
  std::map<std::string, at::Tensor> t;
  for (const auto& spec : models::s2v_dit_tensor_specs(cfg))
    t[spec.name] = at::full(spec.shape, 0.01, at::TensorOptions().dtype(dtype));
  return t;
}

// The release's widths with `layers` blocks, an audio injector after each.
models::S2vDitConfig full_width(int64_t layers) {
  models::S2vDitConfig c;
  c.num_layers = layers;
  c.audio_inject_layers.clear();
  for (int64_t i = 0; i < layers; ++i) c.audio_inject_layers.push_back(i);
  return c;
}

int64_t bytes(const std::vector<at::Tensor>& ts) {
  int64_t n = 0;
  for (const auto& t : ts) n += static_cast<int64_t>(t.nbytes());
  return n;
}

// Every part of every split of `cfg` over `stages` devices, loaded, against the plan.
void expect_weights_match(const models::S2vDitConfig& cfg, const std::map<std::string, at::Tensor>& w, int64_t stages,
                          const std::vector<at::ScalarType>& dtypes = {at::kFloat, at::kBFloat16}) {
  for (auto split : {parallel::DitSplit::kSteps, parallel::DitSplit::kLayers}) {
    if (split == parallel::DitSplit::kSteps && stages > 4) continue;
    // A steps stage holds the whole DiT: once is enough.
    const auto stages_of = parallel::assign_stages(split, stages, cfg.num_layers, 4);
    for (size_t i = 0; i < (split == parallel::DitSplit::kSteps ? 1 : stages_of.size()); ++i) {
      const auto& a = stages_of[i];
      for (auto dtype : dtypes) {
        for (bool fp8 : {false, true}) {
          // fp8 runs on the CPU (LibTorch's _scaled_mm there has no capability rule): every case runs.
          models::S2vDitOptions o;
          o.layers = a.layers;
          o.fp8 = fp8;
          const auto dit = models::S2vDit::from_tensors(w, cfg, at::kCPU, dtype, o);
          EXPECT_EQ(parallel::planned_weight_bytes(cfg, a.layers, dtype, fp8), dit->weight_bytes())
              << "blocks [" << a.layers.begin << ", " << a.layers.end_of(cfg) << ") " << c10::toString(dtype)
              << (fp8 ? " fp8" : "");
        }
      }
    }
  }
}

// A CPU allocator (c10::alloc_cpu, as the default one) counting live and
// peak bytes. data == context, so raw_allocate works too.
class CountingAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    void* p = c10::alloc_cpu(n);
    {
      std::lock_guard<std::mutex> g(lock_);
      sizes_[p] = static_cast<int64_t>(n);
      live_ += static_cast<int64_t>(n);
      peak_ = std::max(peak_, live_);
    }
    return {p, p, &release, c10::Device(c10::kCPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
  int64_t live() const { std::lock_guard<std::mutex> g(lock_); return live_; }
  int64_t peak() const { std::lock_guard<std::mutex> g(lock_); return peak_; }
  void reset_peak() { std::lock_guard<std::mutex> g(lock_); peak_ = live_; }
  static CountingAllocator& instance() {
    static CountingAllocator a;
    return a;
  }

 private:
  static void release(void* p) {
    auto& a = instance();
    {
      std::lock_guard<std::mutex> g(a.lock_);
      const auto it = a.sizes_.find(p);
      if (it != a.sizes_.end()) {
        a.live_ -= it->second;
        a.sizes_.erase(it);
      }
    }
    c10::free_cpu(p);
  }
  mutable std::mutex lock_;
  std::unordered_map<void*, int64_t> sizes_;
  int64_t live_ = 0, peak_ = 0;
};

// Installs a CountingAllocator for the scope (the highest priority, restored after).
class CountingScope {
 public:
  CountingScope() : base_(c10::GetCPUAllocator()) {
    c10::SetCPUAllocator(&CountingAllocator::instance(), kPriority);
  }
  ~CountingScope() { c10::SetCPUAllocator(base_, kPriority); }
  CountingAllocator& counter() { return CountingAllocator::instance(); }

 private:
  static constexpr uint8_t kPriority = 200;
  c10::Allocator* base_;
};

at::Tensor seeded(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
}

double ratio(int64_t planned, int64_t measured) { return static_cast<double>(planned) / static_cast<double>(measured); }

}  // namespace

TEST(MemoryPlan, WeightsOfEveryPartMatchLoadedTinyModel) {
  const auto cfg = tools::scale_by_name("tiny").dit;
  const auto w = random_weights(cfg, at::kFloat);
  for (int64_t stages : {1, 2, 3}) expect_weights_match(cfg, w, stages);
}

TEST(MemoryPlan, WeightsMatchLoadedFullWidthLayers) {
  const auto cfg = full_width(2);
  const auto w = constant_weights(cfg, at::kBFloat16);
  expect_weights_match(cfg, w, 2, {at::kBFloat16});  // the GPU's dtype; the tiny test covers float32
}

TEST(MemoryPlan, CachesMatchTheEngine) {
  const auto cfg = tools::scale_by_name("tiny").dit;
  const auto w = random_weights(cfg, at::kFloat);
  const int64_t h = 12, wd = 20;  // latents of 96x160 px
  for (auto dtype : {at::kFloat, at::kBFloat16}) {
    for (const auto& a : parallel::assign_stages(parallel::DitSplit::kLayers, 2, cfg.num_layers, 4)) {
      models::S2vDitOptions o;
      o.layers = a.layers;
      const auto dit = models::S2vDit::from_tensors(w, cfg, at::kCPU, dtype, o);
      const int64_t blocks = a.layers.end_of(cfg) - a.layers.begin;
      const int64_t ring = 4 * 3 * dit->frame_tokens(h, wd);
      const auto kv = dit->make_kv_cache(ring);
      EXPECT_EQ(bytes(kv.k) + bytes(kv.v), blocks * parallel::planned_kv_bytes(cfg, ring, dtype));
    }
    const auto dit = models::S2vDit::from_tensors(w, cfg, at::kCPU, dtype);
    const auto prompt = dit->encode_prompt(seeded({7, cfg.text_dim}, 1));
    int64_t prompt_bytes = 0;
    for (const auto& l : prompt.layers) prompt_bytes += static_cast<int64_t>(l.k.nbytes() + l.v.nbytes());
    EXPECT_EQ(prompt_bytes, cfg.num_layers * parallel::planned_kv_bytes(cfg, cfg.text_len, dtype));
    const auto sink = dit->prefill_sink(seeded({16, 1, h, wd}, 2), seeded({16, 73, h, wd}, 3), prompt);
    EXPECT_EQ(sink.tokens, parallel::planned_sink_tokens(h, wd));
    EXPECT_EQ(bytes(sink.k) + bytes(sink.v),
              cfg.num_layers * parallel::planned_kv_bytes(cfg, parallel::planned_sink_tokens(h, wd), dtype));
  }
}

TEST(MemoryPlan, FlopsOfTheStagesAddUpToTheBenchmarksCount) {
  const models::S2vDitConfig cfg;  // the release
  const int64_t tokens = 3 * 24 * 44, keys = 4 * tokens + parallel::planned_sink_tokens(48, 88);
  double sum = 0;
  for (const auto& a : parallel::assign_stages(parallel::DitSplit::kLayers, 5, cfg.num_layers, 4))
    sum += parallel::planned_forward_flops(cfg, a.layers, tokens, keys);
  EXPECT_NEAR(sum / tools::dit_forward_flops(cfg, tokens, keys), 1.0, 1e-12);
}

// The activation peak of a denoising step (condition_block + forward with a
// full KV ring) and of a sink prefill, at full width, 256x128 px, float32 on
// the CPU, measured by a counting allocator, against the plan's replay.
TEST(MemoryPlan, ActivationPeakWithinTenPercentOfMeasured) {
  c10::InferenceMode guard;
  const auto cfg = full_width(1);
  const int64_t h = 16, w = 32;  // 384 tokens a block: a CPU forward at full width in seconds
  std::shared_ptr<const models::S2vDit> dit;
  {
    const auto weights = constant_weights(cfg, at::kBFloat16);
    dit = models::S2vDit::from_tensors(weights, cfg, at::kCPU, at::kFloat);
  }
  parallel::ActivationShape shape;
  shape.grid_h = h / 2;
  shape.grid_w = w / 2;
  shape.ring_tokens = 4 * 3 * dit->frame_tokens(h, w);
  shape.sink_tokens = parallel::planned_sink_tokens(h, w);
  const auto planned_step = parallel::planned_step_activations(cfg, {}, shape, at::kFloat, false, true);
  const auto planned_prefill = parallel::planned_prefill_activations(cfg, {}, shape, at::kFloat, false, true);

  const at::Tensor text = seeded({20, cfg.text_dim}, 1), ref = seeded({16, 1, h, w}, 2),
                   motion = seeded({16, 73, h, w}, 3), audio = seeded({25, cfg.audio_dim, 12}, 4),
                   x = seeded({16, 3, h, w}, 5);
  auto kv = dit->make_kv_cache(shape.ring_tokens);
  const auto prompt = dit->encode_prompt(text);

  CountingScope scope;
  auto& count = scope.counter();
  count.reset_peak();
  int64_t base = count.live();
  models::CondCache sink = dit->prefill_sink(ref, motion, prompt);
  const int64_t sink_bytes = bytes(sink.k) + bytes(sink.v);
  const int64_t measured_prefill = count.peak() - base - sink_bytes;

  count.reset_peak();
  base = count.live();
  const int64_t first_frame = 12;  // the ring has wrapped: all of it is attended
  const auto cond = dit->condition_block(audio, {}, first_frame, h, w);
  const at::Tensor v = dit->forward(x, 500.0f, cond, kv, sink, prompt, first_frame * dit->frame_tokens(h, w), 10);
  const int64_t measured_step = count.peak() - base;

  std::printf("step: planned %lld measured %lld (%.3f), peak at %s\nprefill: planned %lld measured %lld (%.3f), peak at %s\n",
              static_cast<long long>(planned_step.bytes), static_cast<long long>(measured_step),
              ratio(planned_step.bytes, measured_step), planned_step.where.c_str(),
              static_cast<long long>(planned_prefill.bytes), static_cast<long long>(measured_prefill),
              ratio(planned_prefill.bytes, measured_prefill), planned_prefill.where.c_str());
  EXPECT_NEAR(ratio(planned_step.bytes, measured_step), 1.0, 0.10);
  EXPECT_NEAR(ratio(planned_prefill.bytes, measured_prefill), 1.0, 0.10);
}

// The encoders' weight bytes as the planner counts them against the models loaded from a store
// of every tensor of their layouts (tiny scale, CTC head and masked embedding included): the
// bytes the counting allocator holds once the model is loaded. The store's tensors are float32
// and the models load in float64, so every tensor a model keeps is a new allocation (one kept
// as stored would be a view, and show as a difference).
TEST(MemoryPlan, EncoderWeightBytesAreTheLoadedModels) {
  c10::InferenceMode guard;
  const tools::Scale tiny = tools::scale_by_name("tiny");
  auto store_of = [](const std::vector<models::TensorSpec>& specs) {
    std::map<std::string, at::Tensor> t;
    for (const auto& spec : specs) t[spec.name] = tools::random_tensor(spec, 11, at::kFloat);
    io::WeightStore store;
    store.add_tensors("layout", t);
    return store;
  };
  auto held_by = [](auto load) {
    CountingScope scope;
    const int64_t before = scope.counter().live();
    auto model = load();
    return scope.counter().live() - before;
  };
  {
    io::WeightStore store = store_of(models::wav2vec2_tensor_specs(tiny.wav2vec2));
    EXPECT_EQ(held_by([&] { return models::Wav2Vec2::from_store(store, tiny.wav2vec2, at::kCPU, at::kDouble); }),
              parallel::planned_wav2vec2_weight_bytes(tiny.wav2vec2, at::kDouble));
  }
  {
    io::WeightStore store = store_of(models::umt5_tensor_specs(tiny.t5));
    EXPECT_EQ(held_by([&] { return models::Umt5Encoder::from_store(store, tiny.t5, at::kCPU, at::kDouble); }),
              parallel::planned_umt5_weight_bytes(tiny.t5, at::kDouble));
  }
  {
    io::WeightStore store = store_of(models::wan_vae_tensor_specs(tiny.vae));
    EXPECT_EQ(held_by([&] { return models::WanVae::from_store(store, tiny.vae, at::kCPU, at::kDouble); }),
              parallel::planned_vae_weight_bytes(tiny.vae, at::kDouble));
  }
  // The release's wav2vec2 (315M parameters kept): what a 24 GB card gives laaudiofeat in bf16.
  std::printf("wav2vec2-large-xlsr-53 weights in bf16: %.3f GiB\n",
              static_cast<double>(parallel::planned_wav2vec2_weight_bytes({}, at::kBFloat16)) / (1 << 30));
}

TEST(MemoryPlan, AutoSplitAndTheLastLine) {
  parallel::PlanRequest r;  // the release at 720*400
  r.device_gib = {24, 24, 24, 24};
  const auto p = parallel::plan_memory(r);
  EXPECT_EQ(p.split, parallel::DitSplit::kLayers);  // no replica fits 24 GiB
  // Not even split four ways with its caches (32.8 GiB on the first device; docs/planner.md's table).
  EXPECT_FALSE(p.fits);
  const std::string text = parallel::format_plan(p);
  const std::string last = text.substr(text.rfind('\n') + 1);
  EXPECT_EQ(last.rfind("fits: no, split: layers, largest device: ", 0), 0u) << last;
  EXPECT_NE(last.find(" of 24.0 GiB"), std::string::npos) << last;
  r.device_gib = {140, 140, 140, 140};
  EXPECT_EQ(parallel::plan_memory(r).split, parallel::DitSplit::kSteps);
  r.device_gib = {4};
  const auto tiny = parallel::plan_memory(r);
  EXPECT_FALSE(tiny.fits);
  EXPECT_NE(parallel::plan_suggestion(tiny), "");
}

namespace {

struct ToolRun {
  int status;
  std::string out;
};

ToolRun run_plan(const std::string& args) {
  const char* tool = std::getenv("LA_PLAN");
  if (!tool) return {-1, ""};
  FILE* f = popen((std::string(tool) + " " + args + " 2>&1").c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), f)) out.append(buf.data(), n);
  const int status = pclose(f);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST(LaPlan, PrintsTheTableWithTheLastLine) {
  if (!std::getenv("LA_PLAN")) GTEST_SKIP() << "LA_PLAN is not set";
  const ToolRun r = run_plan("--size 704*384 --devices 5x80 --vae-device 4 --tflops 400");
  ASSERT_EQ(r.status, 0) << r.out;
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  const std::string last = out.substr(out.rfind('\n') + 1);
  EXPECT_EQ(last.rfind("fits: yes, split: steps, largest device: ", 0), 0u) << r.out;
  EXPECT_NE(out.find("frames/s"), std::string::npos) << r.out;
}

// --checkpoint-dir reads the encoders' shapes from the directory's files: the miniature's umT5,
// VAE and wav2vec2 take kilobytes, so it fits half a GiB without a reserve (with the release's
// encoders, as before, it needed 21.6 GiB).
TEST(LaPlan, ReadsTheEncodersOfTheCheckpoint) {
  if (!std::getenv("LA_PLAN")) GTEST_SKIP() << "LA_PLAN is not set";
  const char* src = std::getenv("LA_SOURCE_DIR");
  const std::string dir = std::string(src ? src : ".") + "/models/miniature";
  const ToolRun r = run_plan("--checkpoint-dir " + dir + " --devices 1x0.5 --reserve 0 --dtype float32 --size 128*128");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.rfind("checkpoint " + dir + "/Wan2.2-S2V-14B: DiT config.json, umT5, VAE, wav2vec2\n", 0), 0u)
      << r.out;
  EXPECT_NE(r.out.find("fits: yes, split: steps, largest device: 0.0 of 0.5 GiB"), std::string::npos) << r.out;
}

// laaudiofeat's wav2vec2 goes where liveavatarbin puts it: beside the VAE decoder, else on
// device 0; --audio-device moves it, none drops it.
TEST(LaPlan, PlacesTheAudioEncoder) {
  if (!std::getenv("LA_PLAN")) GTEST_SKIP() << "LA_PLAN is not set";
  auto audio_row = [](const std::string& args) {
    const ToolRun r = run_plan(args);
    EXPECT_EQ(r.status, 0) << r.out;
    const size_t at = r.out.find("audio encoder");
    return at == std::string::npos ? r.out : r.out.substr(at, r.out.find('\n', at) - at);
  };
  EXPECT_EQ(audio_row("--devices 1x80"), "audio encoder              0.6");
  EXPECT_EQ(audio_row("--devices 3x80 --vae-device 2"), "audio encoder              0.0       0.0       0.6");
  EXPECT_EQ(audio_row("--devices 3x80 --vae-device 2 --audio-device 1"),
            "audio encoder              0.0       0.6       0.0");
  EXPECT_EQ(audio_row("--devices 2x80 --audio-device none"), "audio encoder              0.0       0.0");
}

TEST(LaPlan, BadArgumentsExitTwoWithAMessage) {
  if (!std::getenv("LA_PLAN")) GTEST_SKIP() << "LA_PLAN is not set";
  // The second row: numbers whose plan would overflow its sums (or an int) and print a negative
  // "fits: yes" with status 0, as they did.
  for (const char* args : {"--size 700*384", "--devices 4xfoo", "--split rows", "--vae-device 9", "--bogus",
                           "--steps", "--checkpoint-dir /nonexistent", "--steps 99999999999", "--reserve inf",
                           "--devices 1x1e30", "--devices 1x1e-300", "--devices 65x24", "--tflops 1e300",
                           "--size 99999*99999", "--audio-device 2", "--audio-device -1"}) {
    const ToolRun r = run_plan(args);
    EXPECT_EQ(r.status, 2) << args << ": " << r.out;
    EXPECT_NE(r.out.find("la-plan: "), std::string::npos) << args << ": " << r.out;
    EXPECT_EQ(r.out.find("fits: "), std::string::npos) << args << ": " << r.out;
  }
}

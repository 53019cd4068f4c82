// la-bench-dit: runs a generation session for N blocks and prints, per block,
// the ms of each denoising step, noisy tokens/s, achieved TFLOP/s, and memory.
// Weights come from a checkpoint directory (+ optional LoRA) or are made at
// random directly on the device at a chosen scale (--scale full: the 14B
// shapes, no files; speed does not depend on the values).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/parallel/dit_pipeline.h"
#include "engine/session/generation_session.h"
#include "tools/bench/dit_flops.h"
#include "tools/bench/dit_pipeline_bench.h"
#include "tools/bench/memory_stats.h"
#include "tools/common/args.h"
#include "tools/common/device_arg.h"
#include "tools/mkcheckpoint/scales.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string checkpoint;  // Wan2.2-S2V-14B directory; empty: random weights at `scale`
  std::string lora;
  std::string scale = "tiny";
  int64_t width = 704, height = 384;
  int64_t blocks = 8;
  int steps = 4;
  std::string device = "cpu";
  std::string dtype;  // default: f32 on CPU, bf16 on CUDA
  bool fp8 = false;
  std::string devices;  // several: the DiT pipeline (dit_pipeline_bench.h)
  std::string split = "layers";
  std::string handover = "nccl";
};

void usage(FILE* f) {
  std::fprintf(f,
      "usage: la-bench-dit [--checkpoint DIR [--lora FILE] | --scale tiny|miniature|full] [--width W] [--height H]\n"
      "                    [--blocks N] [--steps N] [--device cpu|cuda:N] [--dtype f32|bf16|f16] [--fp8]\n"
      "                    [--devices cpu,cpu|cuda:0,cuda:1,... --split steps|layers\n"
      "                     [--handover nccl|copy|nccl-everywhere]]\n"
      "--devices runs the DiT pipeline of one stream over those devices (random weights at --scale)\n"
      "and prints per-stage busy and idle time and the pipeline's frames/s. --handover: how stages on\n"
      "different GPUs pass activations (nccl-everywhere: NCCL between stages on one GPU too).\n");
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t comma; (comma = list.find(',', pos)) != std::string::npos; pos = comma + 1)
    out.push_back(list.substr(pos, comma - pos));
  out.push_back(list.substr(pos));
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  la::tools::Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--checkpoint") o.checkpoint = args.value();
    else if (a == "--lora") o.lora = args.value();
    else if (a == "--scale") o.scale = args.value();
    else if (a == "--width") o.width = args.int64_value();
    else if (a == "--height") o.height = args.int64_value();
    else if (a == "--blocks") o.blocks = args.int64_value();
    else if (a == "--steps") o.steps = args.int_value();
    else if (a == "--device") o.device = args.value();
    else if (a == "--dtype") o.dtype = args.value();
    else if (a == "--fp8") o.fp8 = true;
    else if (a == "--devices") o.devices = args.value();
    else if (a == "--split") o.split = args.value();
    else if (a == "--handover") o.handover = args.value();
    else args.unknown();
  }
  if (o.width % 16 || o.height % 16 || o.width <= 0 || o.height <= 0)
    throw la::tools::UsageError("--width and --height must be positive multiples of 16 (VAE 8 x DiT patch 2)");
  if (o.blocks < 1) throw la::tools::UsageError("--blocks must be >= 1");
  if (o.steps < 1 || o.steps > 1000) throw la::tools::UsageError("--steps must be 1..1000, got " + std::to_string(o.steps));
  la::tools::device_arg("--device", o.device);
  if (!o.devices.empty())
    for (const std::string& d : split_list(o.devices)) la::tools::device_arg("--devices", d);
  la::tools::scale_by_name(o.scale);
  try {  // the engine's words for a bad name, which is the command line's error here
    la::parallel::parse_gpu_handover(o.handover);
    if (!o.devices.empty()) la::parallel::parse_dit_split(o.split);
  } catch (const std::invalid_argument& e) {
    throw la::tools::UsageError(e.what());
  }
  return o;
}

void sync(const at::Device& d) {
  if (d.is_cuda()) c10::cuda::device_synchronize();
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
double gib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 30); }

// Random weights of the scale's shapes, drawn on the device itself.
std::map<std::string, at::Tensor> random_tensors(const la::models::S2vDitConfig& cfg, at::Device device,
                                                 at::ScalarType dtype) {
  std::map<std::string, at::Tensor> tensors;
  for (const auto& spec : la::models::s2v_dit_tensor_specs(cfg)) {
    int64_t fan_in = 1;
    for (size_t i = 1; i < spec.shape.size(); ++i) fan_in *= spec.shape[i];
    const double std = spec.init == la::models::Init::kMatrix ? 1.0 / std::sqrt(double(fan_in)) : 0.02;
    at::Tensor t = at::randn(spec.shape, at::TensorOptions().device(device).dtype(at::kFloat)).mul_(std);
    if (spec.init == la::models::Init::kNormScale) t.add_(1.0);
    tensors[spec.name] = t.to(dtype);
  }
  return tensors;
}

std::shared_ptr<const la::models::S2vDit> random_dit(const std::string& scale, at::Device device,
                                                     at::ScalarType dtype, const la::models::S2vDitOptions& options) {
  const auto cfg = la::tools::scale_by_name(scale).dit;
  return la::models::S2vDit::from_tensors(random_tensors(cfg, device, dtype), cfg, device, dtype, options,
                                          "random " + scale + " DiT");
}


int run(const Options& o) {
  if (!o.devices.empty()) {
    la::tools::PipelineBenchOptions po;
    po.devices = split_list(o.devices);
    po.split = o.split;
    po.width = o.width;
    po.height = o.height;
    po.blocks = o.blocks;
    po.steps = o.steps;
    po.fp8 = o.fp8;
    po.handover = o.handover;
    const at::Device first(po.devices.front());
    const at::ScalarType dtype = la::tools::dtype_for(o.dtype, first);
    const auto cfg = la::tools::scale_by_name(o.scale).dit;
    return la::tools::run_pipeline_bench(po, random_tensors(cfg, first, dtype), cfg, dtype);
  }
  const at::Device device(o.device);
  const at::ScalarType dtype = la::tools::dtype_for(o.dtype, device);
  auto t_load = Clock::now();
  la::models::S2vDitOptions options;
  options.fp8 = o.fp8;
  const auto dit = o.checkpoint.empty() ? random_dit(o.scale, device, dtype, options)
                                        : la::models::S2vDit::load(o.checkpoint, o.lora, device, dtype, options);
  sync(device);
  const double load_ms = ms_since(t_load);
  const auto& cfg = dit->config();
  const int64_t h = o.height / 8, w = o.width / 8;

  la::session::SessionOptions so;
  so.steps = o.steps;
  la::session::GenerationSession session(dit, h, w, so);
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  session.set_prompt(at::randn({std::min<int64_t>(24, cfg.text_len), cfg.text_dim}, opts));
  session.set_reference(at::randn({cfg.in_dim, 1, h, w}, opts), at::randn({cfg.in_dim, 19, h, w}, opts));
  const int64_t tokens = 3 * dit->frame_tokens(h, w);
  std::printf("DiT dim %lld x %lld layers on %s (%s), %lldx%lld px = %lld noisy tokens per block, %d steps, "
              "%lld fp8 linears, loaded in %.0f ms\n",
              (long long)cfg.dim, (long long)cfg.num_layers, device.str().c_str(), at::toString(dtype),
              (long long)o.width, (long long)o.height, (long long)tokens, o.steps, (long long)dit->fp8_layers(),
              load_ms);

  // Device peaks per phase (the planner's activation line is the largest transient of one
  // step or one prefill above what stays allocated): loading, the prefill, the blocks.
  const auto loaded = la::tools::memory_stats(device);
  la::tools::reset_device_peak(device);
  auto t0 = Clock::now();
  session.prepare();
  sync(device);
  const auto prefilled = la::tools::memory_stats(device);
  std::printf("sink prefill: %.1f ms, caches %.2f GiB\n", ms_since(t0), gib(session.cache_bytes()));
  if (device.is_cuda())
    std::printf("device memory: after loading %.2f GiB (peak %.2f); prefill peak %.2f GiB, after it %.2f GiB "
                "(transient %.2f)\n",
                gib(loaded.device_bytes), gib(loaded.device_peak_bytes), gib(prefilled.device_peak_bytes),
                gib(prefilled.device_bytes), gib(prefilled.device_peak_bytes - prefilled.device_bytes));
  la::tools::reset_device_peak(device);

  std::vector<double> step_ms(o.steps);
  Clock::time_point step_start;
  session.set_step_observer([&](int step, const at::Tensor&) {
    sync(device);
    step_ms[step] = ms_since(step_start);
    step_start = Clock::now();
  });
  const at::Tensor audio = at::randn({25, cfg.audio_dim, 12}, opts);
  // Sink tokens: reference frame + frame-packed motion (docs/dit.md).
  const int64_t t_frame = dit->frame_tokens(h, w);
  const int64_t sink = 2 * t_frame + (h / 4) * (w / 4) + 4 * (h / 8) * (w / 8);
  double steady_ms = 0, steady_flops = 0;
  int64_t steady_blocks = 0;
  for (int64_t b = 0; b < o.blocks; ++b) {
    step_start = t0 = Clock::now();
    session.next_block(audio);
    const double block_ms = ms_since(t0);
    const int64_t history = std::min<int64_t>(b + 1, so.blocks_per_clip) * tokens;
    const double flops = o.steps * la::tools::dit_forward_flops(cfg, tokens, history + sink);
    std::printf("block %4lld: steps", (long long)b);
    for (double s : step_ms) std::printf(" %8.1f", s);
    std::printf(" ms | %9.1f ms/block, %10.0f tokens/s, %9.4g TFLOP/s\n", block_ms,
                1000.0 * tokens * o.steps / block_ms, flops / block_ms / 1e9);
    if (b >= so.blocks_per_clip - 1) {  // steady state: the KV window is full
      steady_ms += block_ms;
      steady_flops += flops;
      ++steady_blocks;
    }
  }
  const auto m = la::tools::memory_stats(device);
  if (steady_blocks)
    std::printf("steady state (%lld blocks): %.1f ms/block, %.4g TFLOP/s, %.4g TFLOP per forward\n",
                (long long)steady_blocks, steady_ms / steady_blocks, steady_flops / steady_ms / 1e9,
                steady_flops / steady_blocks / o.steps / 1e12);
  std::printf("memory: rss %.2f GiB (peak %.2f), device %.2f GiB (peak during the blocks %.2f, transient %.2f)\n",
              gib(m.rss_bytes), gib(m.peak_rss_bytes), gib(m.device_bytes), gib(m.device_peak_bytes),
              gib(m.device_peak_bytes - m.device_bytes));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return la::tools::run_tool("la-bench-dit", argc, argv, usage, [&] { return run(parse(argc, argv)); });
}

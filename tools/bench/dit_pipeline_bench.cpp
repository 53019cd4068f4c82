#include "tools/bench/dit_pipeline_bench.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <chrono>
#include <cstdio>
#include <memory>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/parallel/dit_pipeline.h"
#include "engine/parallel/partition.h"

namespace la::tools {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int run_pipeline_bench(const PipelineBenchOptions& o, const std::map<std::string, at::Tensor>& tensors,
                       const models::S2vDitConfig& cfg, at::ScalarType dtype) {
  const parallel::DitSplit split = parallel::parse_dit_split(o.split);
  const auto stages = parallel::assign_stages(split, static_cast<int64_t>(o.devices.size()), cfg.num_layers, o.steps);
  // Stages on one device holding the same blocks share one part, as the element's model cache does.
  std::map<std::string, std::shared_ptr<const models::S2vDit>> loaded;
  std::vector<std::shared_ptr<const models::S2vDit>> parts;
  for (size_t d = 0; d < stages.size(); ++d) {
    const at::Device device(o.devices[d]);
    const std::string key = device.str() + "/" + std::to_string(stages[d].layers.begin) + "-" +
                            std::to_string(stages[d].layers.end_of(cfg));
    if (!loaded.count(key)) {
      models::S2vDitOptions options;
      options.fp8 = o.fp8;
      options.layers = stages[d].layers;
      loaded[key] = models::S2vDit::from_tensors(tensors, cfg, device, dtype, options, "random DiT");
    }
    parts.push_back(loaded[key]);
  }
  const int64_t h = o.height / 8, w = o.width / 8;
  session::SessionOptions so;
  so.steps = o.steps;
  parallel::DitPipeline p(parts, stages, h, w, so, parallel::parse_gpu_handover(o.handover));
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  p.set_prompt(at::randn({std::min<int64_t>(24, cfg.text_len), cfg.text_dim}, opts));
  p.set_reference(at::randn({cfg.in_dim, 1, h, w}, opts), at::randn({cfg.in_dim, 19, h, w}, opts));
  const at::Tensor audio = at::randn({25, cfg.audio_dim, 12}, opts);

  std::printf("DiT pipeline: %zu stages (%s split), %lldx%lld px, %d steps, %d intra-op threads per stage, "
              "%lld NCCL links (GPU hand-over %s)\n",
              stages.size(), parallel::dit_split_name(split), (long long)o.width, (long long)o.height, o.steps,
              at::get_num_threads(), (long long)p.nccl_links(), o.handover.c_str());
  for (size_t d = 0; d < stages.size(); ++d)
    std::printf("  stage %zu on %s: blocks %lld..%lld, steps %d..%d, %.2f GiB of weights\n", d, o.devices[d].c_str(),
                (long long)stages[d].layers.begin, (long long)stages[d].layers.end_of(cfg) - 1, stages[d].first_step,
                stages[d].end_step - 1, parts[d]->weight_bytes() / double(1 << 30));

  // Warm-up: the first clip (sink prefill, the KV window filling), then the measured blocks.
  const int64_t warm = so.blocks_per_clip;
  int64_t taken = 0;
  auto take = [&] {
    p.take();
    ++taken;
  };
  for (int64_t b = 0; b < warm; ++b) {
    if (p.pending() == p.depth()) take();
    p.submit(audio);
  }
  while (p.pending() > 0) take();
  const auto busy0 = p.stage_stats();
  const auto t0 = Clock::now();
  for (int64_t b = 0; b < o.blocks; ++b) {
    if (p.pending() == p.depth()) take();
    p.submit(audio);
  }
  while (p.pending() > 0) take();
  const double wall = seconds_since(t0);
  const auto busy = p.stage_stats();
  std::printf("steady state: %lld blocks in %.2f s: %.1f ms/block, %.2f frames/s (12 frames a block)\n",
              (long long)o.blocks, wall, 1000.0 * wall / o.blocks, 12.0 * o.blocks / wall);
  double busy_sum = 0;
  for (size_t d = 0; d < busy.size(); ++d) {
    const double b = busy[d].busy_s - busy0[d].busy_s;
    const int64_t items = busy[d].items - busy0[d].items;
    busy_sum += b;
    std::printf("  stage %zu: busy %.2f s, idle %.2f s (%.0f%% busy), %lld items, %.2f items/s\n", d, b, wall - b,
                100.0 * b / wall, (long long)items, items / wall);
  }
  std::printf("overlap: %.2f stages computing at once on average\n", busy_sum / wall);
  return 0;
}

}  // namespace la::tools

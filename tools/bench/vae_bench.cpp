// la-bench-vae: streaming-decodes N blocks of 3 latent frames and prints ms
// per block, frames/s and memory every --report blocks. Weights come from a
// checkpoint or are made at random in memory at a chosen scale (speed does not
// depend on the values).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAFunctions.h>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/models/wan_vae/wan_vae.h"
#include "tools/bench/memory_stats.h"
#include "tools/common/args.h"
#include "tools/common/device_arg.h"
#include "tools/mkcheckpoint/random_weights.h"
#include "tools/mkcheckpoint/scales.h"

namespace {

struct Options {
  std::string checkpoint;  // Wan2.1_VAE.pth; empty: random weights at `scale`
  std::string scale = "tiny";
  int64_t width = 704, height = 384;
  int64_t blocks = 100;
  int64_t report = 100;
  std::string device = "cpu";
  std::string dtype;  // default: f32 on CPU, bf16 on CUDA
};

void usage(FILE* f) {
  std::fprintf(f,
      "usage: la-bench-vae [--checkpoint Wan2.1_VAE.pth | --scale tiny|miniature|full] [--width W] [--height H]\n"
      "                    [--blocks N] [--report N] [--device cpu|cuda:N] [--dtype f32|bf16|f16]\n"
      "defaults: --scale tiny, 704x384, 100 blocks, a report every 100 blocks\n");
}

Options parse(int argc, char** argv) {
  Options o;
  la::tools::Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--checkpoint") o.checkpoint = args.value();
    else if (a == "--scale") o.scale = args.value();
    else if (a == "--width") o.width = args.int64_value();
    else if (a == "--height") o.height = args.int64_value();
    else if (a == "--blocks") o.blocks = args.int64_value();
    else if (a == "--report") o.report = args.int64_value();
    else if (a == "--device") o.device = args.value();
    else if (a == "--dtype") o.dtype = args.value();
    else args.unknown();
  }
  if (o.width % 8 || o.height % 8 || o.width <= 0 || o.height <= 0)
    throw la::tools::UsageError("--width and --height must be positive multiples of 8");
  if (o.blocks < 1 || o.report < 1) throw la::tools::UsageError("--blocks and --report must be >= 1");
  la::tools::device_arg("--device", o.device);
  return o;
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

void sync(const at::Device& d) {
  if (d.is_cuda()) c10::cuda::device_synchronize();
}

int run(const Options& o) {
  const at::Device device(o.device);
  const at::ScalarType dtype = la::tools::dtype_for(o.dtype, device);
  std::shared_ptr<const la::models::WanVae> vae;
  if (!o.checkpoint.empty()) {
    vae = la::models::WanVae::load(o.checkpoint, device, dtype);
  } else {
    const auto scale = la::tools::scale_by_name(o.scale);
    std::map<std::string, at::Tensor> tensors;
    for (const auto& spec : la::models::wan_vae_tensor_specs(scale.vae))
      tensors[spec.name] = la::tools::random_tensor(spec, 1, dtype);
    la::io::WeightStore store;
    store.add_tensors("random " + o.scale + " VAE", tensors);
    vae = la::models::WanVae::from_store(store, scale.vae, device, dtype);
  }
  std::printf("VAE base dim %lld on %s (%s), %lldx%lld, %lld blocks of 3 latent frames\n",
              (long long)vae->config().dim, device.str().c_str(), at::toString(dtype), (long long)o.width,
              (long long)o.height, (long long)o.blocks);

  la::models::WanVaeDecodeState state;
  const auto opts = at::TensorOptions().dtype(dtype).device(device);
  const at::Tensor block = at::randn({16, 3, o.height / 8, o.width / 8}, opts);
  double window_ms = 0;
  int64_t window_frames = 0;
  for (int64_t b = 1; b <= o.blocks; ++b) {
    const auto t0 = std::chrono::steady_clock::now();
    const at::Tensor frames = vae->decode(state, block);
    sync(device);
    window_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    window_frames += frames.size(1);
    if (b % o.report == 0 || b == o.blocks) {
      const int64_t n = (b - 1) % o.report + 1;
      const auto m = la::tools::memory_stats(device);
      std::printf("blocks %6lld: %8.2f ms/block, %8.2f frames/s, rss %8.1f MiB (peak %8.1f), device %8.1f MiB (peak %8.1f)\n",
                  (long long)b, window_ms / n, 1000.0 * window_frames / window_ms, mib(m.rss_bytes),
                  mib(m.peak_rss_bytes), mib(m.device_bytes), mib(m.device_peak_bytes));
      std::fflush(stdout);
      window_ms = 0;
      window_frames = 0;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return la::tools::run_tool("la-bench-vae", argc, argv, usage, [&] { return run(parse(argc, argv)); });
}

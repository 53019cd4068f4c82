// liveavatargen's generator without GStreamer: offloading the umT5 encoder
// (released after each prompt, reloaded for the next) gives the same latents
// as keeping it, and really lets it go.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <c10/cuda/CUDACachingAllocator.h>

#include "elements/avatar_generator.h"
#include "engine/runtime/cuda_runtime_info.h"
#include "elements/vae_decode_stream.h"
#include "tests/common/bf16_bounds.h"
#include "tests/common/figure.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"

using namespace la;

TEST(AvatarGenerator, OffloadedTextEncoderGivesTheSameLatentsAndIsReleased) {
  test::TempDir dir;
  ASSERT_EQ(test::make_tiny_checkpoint(dir.path()), 0);
  const auto ck = dir.path() / "Wan2.2-S2V-14B";
  elements::GeneratorModels m;
  m.dit = models::S2vDit::load(ck.string(), (dir.path() / "LiveAvatar" / "liveavatar.safetensors").string(),
                               at::kCPU, at::kFloat);
  m.vae = models::WanVae::load((ck / "Wan2.1_VAE.pth").string(), at::kCPU, at::kFloat);
  m.tokenizer = std::make_shared<const models::Umt5Tokenizer>((ck / "google" / "umt5-xxl").string(),
                                                              m.dit->config().text_len);
  const std::string t5_path = (ck / "models_t5_umt5-xxl-enc-bf16.pth").string();
  int loads = 0;
  std::weak_ptr<const models::Umt5Encoder> last;
  m.load_t5 = [&] {
    ++loads;
    auto t5 = models::Umt5Encoder::load(t5_path, at::kCPU, at::kFloat);
    last = t5;
    return t5;
  };
  elements::GeneratorModels kept = m;
  kept.t5 = m.load_t5();
  loads = 0;

  const at::Tensor rgb = at::randint(0, 256, {96, 128, 3}, at::kByte);
  elements::AvatarGenerator off(m, {64, 64}, {}), on(kept, {64, 64}, {});
  for (auto* g : {&off, &on}) {
    g->set_prompt("a person talking");
    g->set_image(rgb);
  }
  EXPECT_EQ(loads, 1);
  EXPECT_TRUE(last.expired()) << "the offloaded encoder is still held";
  at::manual_seed(4);
  const at::Tensor audio = at::randn({25, 32, 12});
  EXPECT_TRUE(at::equal(off.next_block(audio), on.next_block(audio)));
  off.set_prompt("somebody else");
  on.set_prompt("somebody else");
  EXPECT_EQ(loads, 2);
  EXPECT_TRUE(at::equal(off.next_block(audio), on.next_block(audio)));
}

namespace {

// The tiny checkpoint's models for one device and dtype.
elements::GeneratorModels load_models(const std::filesystem::path& dir, at::Device device, at::ScalarType dtype) {
  const auto ck = dir / "Wan2.2-S2V-14B";
  elements::GeneratorModels m;
  m.dit = models::S2vDit::load(ck.string(), (dir / "LiveAvatar" / "liveavatar.safetensors").string(), device, dtype);
  m.vae = models::WanVae::load((ck / "Wan2.1_VAE.pth").string(), device, dtype);
  m.tokenizer = std::make_shared<const models::Umt5Tokenizer>((ck / "google" / "umt5-xxl").string(),
                                                              m.dit->config().text_len);
  m.t5 = models::Umt5Encoder::load((ck / "models_t5_umt5-xxl-enc-bf16.pth").string(), device, dtype);
  return m;
}

// Generates and decodes `blocks` blocks: RGBA frames, one row each, on the CPU.
std::vector<at::Tensor> chain_frames(const elements::GeneratorModels& m, const at::Tensor& rgb,
                                     const std::vector<at::Tensor>& features) {
  elements::AvatarGenerator gen(m, {64, 64}, {});
  gen.set_prompt("a person talking");
  gen.set_image(rgb);
  elements::VaeDecodeStream decode(m.vae, video::PixelFormat::kRGBA, /*online=*/true);
  std::vector<at::Tensor> frames;
  for (size_t b = 0; b < features.size(); ++b)
    for (auto& block : decode.push(gen.next_block(features[b]), b)) frames.push_back(block.pixels.cpu());
  return frames;
}

}  // namespace

// The bf16 path against float32 through the DiT and the VAE, as pixels: the
// figure the GPU pipeline test (Pipelines.CudaMemoryOutputOnTheGpu) is held to.
// bf16 runs on LA_TEST_DEVICE (default the CPU), float32 on the CPU.
TEST(AvatarGenerator, WholeChainBf16AgainstFloat32) {
  test::TempDir dir;
  ASSERT_EQ(test::make_tiny_checkpoint(dir.path()), 0);
  const char* dev = std::getenv("LA_TEST_DEVICE");
  const at::Device device(dev && *dev ? dev : "cpu");
  at::manual_seed(11);
  const at::Tensor rgb = at::randint(0, 256, {96, 128, 3}, at::kByte);
  std::vector<at::Tensor> features;
  for (int b = 0; b < 3; ++b) features.push_back(at::randn({25, 32, 12}));
  const auto want = chain_frames(load_models(dir.path(), at::kCPU, at::kFloat), rgb, features);
  const auto got = chain_frames(load_models(dir.path(), device, at::kBFloat16), rgb, features);
  ASSERT_EQ(want.size(), 3u);
  ASSERT_EQ(got.size(), want.size());
  std::vector<at::Tensor> diffs;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].sizes(), want[i].sizes());
    diffs.push_back((got[i].to(at::kInt) - want[i].to(at::kInt)).abs().flatten().to(at::kFloat));
  }
  const at::Tensor all = at::cat(diffs);
  const double mean = all.mean().item<double>();
  const double p99 = at::quantile(all, 0.99).item<double>();
  const double max = all.max().item<double>();
  std::printf("[bf16 chain] %s: |bf16 - fp32| over %lld bytes: mean %.3f, p99 %.1f, max %.0f levels\n",
              device.str().c_str(), static_cast<long long>(all.numel()), mean, p99, max);
  test::record_doc_figure("chain.bf16.mean_abs_levels", mean);
  test::record_doc_figure("chain.bf16.p99_abs_levels", p99);
  EXPECT_GT(mean, 0.0) << "bf16 and float32 gave identical frames: was bf16 used at all?";
  EXPECT_LE(mean, test::kChainBf16MeanAbsLevels);
  EXPECT_LE(p99, test::kChainBf16P99AbsLevels);
}

namespace {

int64_t reserved_bytes(int device) {
  return c10::cuda::CUDACachingAllocator::getDeviceStats(device).reserved_bytes[0].current;
}

}  // namespace

// offload=true on a GPU: the encoder's memory goes back to the device, not
// only to LibTorch's caching allocator (which never returns it on its own:
// without emptyCache its reserved bytes never go down).
TEST(AvatarGenerator, OffloadedTextEncoderMemoryIsReturnedToTheDevice) {
  if (runtime::query_cuda_runtime().device_count == 0) GTEST_SKIP() << "no CUDA device";
  test::TempDir dir;
  ASSERT_EQ(test::make_tiny_checkpoint(dir.path()), 0);
  const auto ck = dir.path() / "Wan2.2-S2V-14B";
  const at::Device cuda(at::kCUDA, 0);
  elements::GeneratorModels m;
  m.dit = models::S2vDit::load(ck.string(), "", cuda, at::kBFloat16);
  m.vae = models::WanVae::load((ck / "Wan2.1_VAE.pth").string(), cuda, at::kBFloat16);
  m.tokenizer = std::make_shared<const models::Umt5Tokenizer>((ck / "google" / "umt5-xxl").string(),
                                                              m.dit->config().text_len);
  const std::string t5_path = (ck / "models_t5_umt5-xxl-enc-bf16.pth").string();
  int64_t with_t5 = 0, t5_bytes = 0;
  // The tiny umT5 is a few hundred KiB of small tensors that share the allocator's 2 MiB segments
  // with the DiT's and the prompt's, so freeing it alone frees no whole segment (seen on an H200:
  // 38.0 MiB reserved before and after). A 64 MiB scratch tensor, freed when the loader returns
  // like the real encoder's 11 GB of weights after the prompt, is a segment of its own: it stays
  // cached unless the generator hands the cache back to the device.
  m.load_t5 = [&] {
    auto t5 = models::Umt5Encoder::load(t5_path, cuda, at::kBFloat16);
    const at::Tensor scratch = at::empty({64 << 20}, at::TensorOptions().dtype(at::kByte).device(cuda));
    with_t5 = reserved_bytes(0);
    t5_bytes = c10::cuda::CUDACachingAllocator::getDeviceStats(0).allocated_bytes[0].current;
    return t5;
  };
  runtime::release_cached_device_memory(cuda);  // start from no cached blocks
  elements::AvatarGenerator gen(m, {64, 64}, {});
  gen.set_prompt("a person talking");
  const int64_t after = reserved_bytes(0);
  std::printf("[offload] reserved with umT5 %.1f MiB, after the prompt %.1f MiB\n", with_t5 / 1048576.0,
              after / 1048576.0);
  EXPECT_GT(t5_bytes, 0);
  EXPECT_LE(after, with_t5 - (64 << 20)) << "the released memory is still reserved by LibTorch's caching allocator";
}

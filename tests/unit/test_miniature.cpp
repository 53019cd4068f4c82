// The miniature's pieces (docs/miniature.md): the lip-sync measurement finds
// known offsets, the mouth read from pixels follows the drawn opening, the
// loudness envelope, and training through the engine's forward code
// (record_autograd): the same numbers as inference, gradients on the weights.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/io/json_config.h"
#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/models/s2v_dit_layout.h"
#include "engine/models/wan_vae/wan_vae.h"
#include "engine/models/wan_vae_layout.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"
#include "tools/miniature/talking_face.h"

using namespace la;
using namespace la::miniature;

namespace {

// A speech-like envelope: bursts of random length and level with gaps.
std::vector<float> bursty_envelope(int64_t n, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::Tensor r = at::rand({n}, gen);
  std::vector<float> e(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) e[i] = (i / 7) % 3 == 2 ? 0.0f : r[i].item<float>();
  return e;
}

at::Tensor to_rgb(const at::Tensor& face) {
  return ((face + 1) * 127.5).round().clamp(0, 255).to(at::kByte).permute({1, 2, 0}).contiguous();
}

}  // namespace

TEST(LipSyncMeasure, FindsWholeAndFractionalFrameOffsets) {
  const std::vector<float> env = bursty_envelope(300, 1);
  for (int lag : {-3, -1, 0, 2, 4}) {
    std::vector<double> mouth(env.size(), 0.0);
    for (size_t i = 0; i < env.size(); ++i) {
      const int64_t j = static_cast<int64_t>(i) - lag;  // the mouth shows the sound of `lag` frames ago
      mouth[i] = j >= 0 && j < static_cast<int64_t>(env.size()) ? 3.0 + 20.0 * env[j] : 3.0;
    }
    const LipSync s = measure_lip_sync(mouth, env);
    EXPECT_EQ(s.peak_lag_frames, lag);
    EXPECT_NEAR(s.offset_ms, lag * 40.0, 8.0);
    EXPECT_GT(s.peak_correlation, 0.95);
  }
  // Half way between 1 and 2 frames late.
  std::vector<double> mouth(env.size(), 0.0);
  for (size_t i = 2; i < env.size(); ++i) mouth[i] = 0.5 * env[i - 1] + 0.5 * env[i - 2];
  const LipSync half = measure_lip_sync(mouth, env);
  EXPECT_NEAR(half.offset_ms, 60.0, 12.0);
  // A mouth that ignores the sound (noise without the bursts' rhythm).
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  const at::Tensor noise = at::rand({300}, gen);
  const std::vector<float> other(noise.data_ptr<float>(), noise.data_ptr<float>() + 300);
  const LipSync none = measure_lip_sync(std::vector<double>(other.begin(), other.end()), env);
  EXPECT_LT(std::abs(none.correlation), 0.3);
}

TEST(TalkingFace, MeasuredOpeningFollowsTheDrawnOpening) {
  for (int64_t size : {128, 256}) {
    double previous = -1;
    for (float open : {0.0f, 0.25f, 0.5f, 0.75f, 1.0f}) {
      for (float dy : {0.0f, -3.0f}) {
        const double m = measure_mouth_opening(to_rgb(draw_face({open, dy}, size)));
        EXPECT_GT(m, previous - 0.75) << "size " << size << " open " << open << " dy " << dy;
        // Interior half-height 0.8 + 9 * open units: about 1.6 + 18 * open rows at 128 px.
        EXPECT_NEAR(m, 1.6 + 18.0 * open, 2.0) << "size " << size << " open " << open << " dy " << dy;
        if (dy == 0.0f) previous = m;
      }
    }
  }
}

TEST(TalkingFace, LoudnessEnvelopeIsClosedInSilenceAndOpenWhenLoud) {
  std::vector<float> s(16000, 0.0f);
  for (size_t i = 6400; i < 12800; ++i) s[i] = 0.3f * std::sin(2 * M_PI * 200 * i / 16000.0);
  const std::vector<float> e = loudness_envelope(s.data(), static_cast<int64_t>(s.size()), 25);
  EXPECT_EQ(e[3], 0.0f);
  EXPECT_GT(e[15], 0.95f);  // -13.5 dBFS
  EXPECT_EQ(e[24], 0.0f);
  // The [1 2 1]/4 smoothing: the first loud frame's neighbour is a quarter open.
  EXPECT_NEAR(e[9], 0.25f * e[15], 0.02f);
}

class RecordAutograd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_EQ(test::make_tiny_checkpoint(dir_->path()), 0) << "la-mkcheckpoint ($LA_MKCHECKPOINT)";
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::filesystem::path base() { return dir_->path() / "Wan2.2-S2V-14B"; }
  static at::Tensor input(std::vector<int64_t> shape, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randn(shape, gen);
  }
  static test::TempDir* dir_;
};
test::TempDir* RecordAutograd::dir_ = nullptr;

// The same DiT call with and without recording: bit-identical velocity, and
// after backward every weight the call reads has a gradient.
TEST_F(RecordAutograd, DitComputesTheSameAndEveryWeightItReadsGetsAGradient) {
  const auto cfg = models::S2vDitConfig::from_json(io::JsonConfig::load((base() / "config.json").string()));
  auto store = io::WeightStore::open(base().string());
  std::map<std::string, at::Tensor> frozen, trainable;
  for (const auto& spec : models::s2v_dit_tensor_specs(cfg)) {
    frozen[spec.name] = store.get(spec.name, spec.shape).clone();
    trainable[spec.name] = frozen[spec.name].clone().requires_grad_(true);
  }
  models::S2vDitOptions record;
  record.record_autograd = true;
  const auto inference = models::S2vDit::from_tensors(frozen, cfg, at::kCPU, at::kFloat);
  const auto training = models::S2vDit::from_tensors(trainable, cfg, at::kCPU, at::kFloat, record);
  const int64_t h = 8, w = 8;  // the motion frame pack's 4x kernel needs 8x8 latents
  auto run = [&](const models::S2vDit& dit) {
    const auto prompt = dit.encode_prompt(input({5, cfg.text_dim}, 1));
    const auto sink = dit.prefill_sink(input({16, 1, h, w}, 2), input({16, 19, h, w}, 3), prompt);
    auto kv = dit.make_kv_cache(2 * 3 * dit.frame_tokens(h, w));
    at::Tensor out;
    for (int64_t b = 0; b < 2; ++b) {  // the second block reads the first's K/V from the ring
      const auto cond = dit.condition_block(input({25, cfg.audio_dim, 12}, 10 + b), {}, 3 * b, h, w);
      out = dit.forward(input({16, 3, h, w}, 20 + b), 602.15f, cond, kv, sink, prompt, 3 * b * dit.frame_tokens(h, w), 7);
    }
    return out;
  };
  const at::Tensor a = run(*inference), b = run(*training);
  EXPECT_FALSE(a.requires_grad());
  ASSERT_TRUE(b.requires_grad());
  EXPECT_TRUE(at::equal(a, b.detach())) << "recording autograd changed the numbers";
  b.square().mean().backward();
  int64_t with_grad = 0;
  std::vector<std::string> without;
  for (const auto& [name, t] : trainable) {
    if (t.grad().defined() && t.grad().abs().sum().item<double>() > 0) ++with_grad;
    else without.push_back(name);
  }
  // The cond_encoder weight is the pose path: without pose latents only its bias is read.
  for (const auto& name : without) EXPECT_EQ(name, "cond_encoder.weight") << name << " got no gradient";
  EXPECT_GT(with_grad, 40);
}

TEST_F(RecordAutograd, VaeComputesTheSameAndGradientsReachItsWeights) {
  auto store = io::WeightStore::open((base() / "Wan2.1_VAE.pth").string());
  const auto cfg = models::infer_wan_vae_config(store);
  std::map<std::string, at::Tensor> frozen, trainable;
  for (const auto& spec : models::wan_vae_tensor_specs(cfg)) {
    frozen[spec.name] = store.get(spec.name, spec.shape).clone();
    trainable[spec.name] = frozen[spec.name].clone().requires_grad_(true);
  }
  io::WeightStore a_store, b_store;
  a_store.add_tensors("frozen", frozen);
  b_store.add_tensors("trainable", trainable);
  const auto inference = models::WanVae::from_store(a_store, cfg, at::kCPU, at::kFloat);
  const auto training = models::WanVae::from_store(b_store, cfg, at::kCPU, at::kFloat, true);
  const at::Tensor video = input({3, 5, 32, 32}, 4).tanh();
  const at::Tensor a = inference->decode(inference->encode(video));
  const at::Tensor b = training->decode(training->encode(video));
  EXPECT_TRUE(at::equal(a, b.detach())) << "recording autograd changed the numbers";
  b.square().mean().backward();
  int64_t with_grad = 0;
  for (const auto& [name, t] : trainable)
    if (t.grad().defined()) ++with_grad;
  EXPECT_EQ(with_grad, static_cast<int64_t>(trainable.size())) << "every VAE weight is read by encode or decode";
  // Under NoGradGuard the recording model records nothing (the caller's grad mode stands).
  c10::NoGradGuard no_grad;
  EXPECT_FALSE(training->encode(video).requires_grad());
}

namespace {

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace

// la-train-miniature from the same start with the same options gives the
// same files, byte for byte (docs/miniature.md: reproducible training), and
// the weights it writes are trained ones: not the starting point's.
TEST_F(RecordAutograd, TrainerWritesTheSameWeightsEveryRun) {
  const char* trainer = std::getenv("LA_TRAIN_MINIATURE");
  ASSERT_TRUE(trainer) << "LA_TRAIN_MINIATURE is set by the build";
  auto train = [&](const std::string& out) {
    const std::string cmd = std::string(trainer) + " --init " + dir_->path().string() + " --out " + out +
                            " --clips 1 --vae-steps 3 --dit-steps 3 --threads 1 >/dev/null 2>&1";
    return std::system(cmd.c_str());
  };
  test::TempDir out;
  const auto a = out.path() / "a", b = out.path() / "b";
  ASSERT_EQ(train(a.string()), 0) << "la-train-miniature failed (espeak-ng installed?)";
  ASSERT_EQ(train(b.string()), 0);
  const std::vector<std::string> files = {"Wan2.2-S2V-14B/Wan2.1_VAE.pth",
                                          "Wan2.2-S2V-14B/diffusion_pytorch_model-00001-of-00004.safetensors",
                                          "Wan2.2-S2V-14B/diffusion_pytorch_model-00004-of-00004.safetensors",
                                          "LiveAvatar/liveavatar.safetensors"};
  for (const auto& f : files) {
    const std::string bytes = file_bytes(a / f);
    ASSERT_FALSE(bytes.empty()) << f;
    EXPECT_EQ(bytes, file_bytes(b / f)) << f << " differs between two runs";
  }
  EXPECT_NE(file_bytes(a / files[0]), file_bytes(dir_->path() / files[0])) << "the VAE was not trained";
  EXPECT_NE(file_bytes(a / files[2]), file_bytes(dir_->path() / files[2])) << "the DiT was not trained";
  EXPECT_TRUE(std::filesystem::exists(a / "face.png"));
  // The LoRA's B matrices are zero: merging it leaves the trained base as it is.
  auto lora = io::WeightStore::open((a / files[3]).string());
  for (const auto& key : lora.keys())
    if (key.find("lora_B") != std::string::npos) {
      EXPECT_EQ(lora.get_unchecked(key).abs().max().item<float>(), 0.0f) << key;
    }
}

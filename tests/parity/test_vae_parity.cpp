// parity-vae: the Wan 2.1 VAE against the reference's golden outputs
// (../shared/fixtures/parity/vae_*), built from the fixture's own config.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/io/json_config.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/weight_store.h"
#include "engine/models/wan_vae/wan_vae.h"
#include "tests/common/figure.h"
#include "tests/parity/compare.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

// README tolerances: max|d| <= 1e-4 * max(1, max|ref|); decode outputs atol 5e-5.
constexpr double kRel = 1e-4;
constexpr double kDecodeAtol = 5e-5;

class VaeParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string weights = test::parity_file("vae_weights.safetensors");
    const auto cfg = models::WanVaeConfig::from_json(test::fixture_config(weights));
    auto store = io::WeightStore::open(weights);
    vae_ = models::WanVae::from_store(store, cfg, at::kCPU, at::kFloat);
    io_ = new std::map<std::string, at::Tensor>(io::SafetensorsFile(test::parity_file("vae_io.safetensors")).tensors());
  }
  static void TearDownTestSuite() {
    delete io_;
    vae_.reset();
  }
  static const at::Tensor& t(const std::string& name) { return io_->at(name); }
  static std::vector<int64_t> range(const std::string& name) {
    const at::Tensor r = t(name);
    return {r[0].item<int64_t>(), r[1].item<int64_t>()};
  }

  static std::shared_ptr<const models::WanVae> vae_;
  static std::map<std::string, at::Tensor>* io_;
};
std::shared_ptr<const models::WanVae> VaeParity::vae_;
std::map<std::string, at::Tensor>* VaeParity::io_ = nullptr;

}  // namespace

TEST_F(VaeParity, NormalisationConstantsMatch) {
  EXPECT_TRUE(at::equal(vae_->latent_mean(), t("norm.mean")));
  EXPECT_TRUE(at::equal(vae_->latent_inv_std(), t("norm.inv_std")));
}

TEST_F(VaeParity, EncodeRawAndNormalised) {
  const at::Tensor video = t("enc.video")[0];
  EXPECT_TRUE(test::close_rel(vae_->encode_raw(video), t("enc.latent_raw")[0], kRel, "enc.latent_raw"));
  la::test::record_doc_figure("vae.encode_raw.max_abs", test::last_diff().max_abs);  // docs/vae.md
  EXPECT_TRUE(test::close_rel(vae_->encode(video), t("enc.latent")[0], kRel, "enc.latent"));
  la::test::record_doc_figure("vae.encode.max_abs", test::last_diff().max_abs);
}

TEST_F(VaeParity, FullDecode) {
  EXPECT_TRUE(test::close_abs(vae_->decode(t("dec.latent")[0]), t("dec.video_raw")[0], kDecodeAtol, "dec.video_raw"));
  la::test::record_doc_figure("vae.full_decode.max_abs", test::last_diff().max_abs);
}

TEST_F(VaeParity, DecodeOfEncode) {
  EXPECT_TRUE(test::close_abs(vae_->decode(t("enc.latent")[0]), t("dec_of_enc.video_raw")[0], kDecodeAtol,
                              "dec_of_enc.video_raw"));
  la::test::record_doc_figure("vae.decode_of_encode.max_abs", test::last_diff().max_abs);
}

TEST_F(VaeParity, StreamingEncodeCallByCall) {
  models::WanVaeEncodeState state;
  const at::Tensor video = t("enc.video")[0];
  int calls = 0;
  double worst = 0;
  for (int k = 0; io_->count("stream_enc.call" + std::to_string(k) + ".latent"); ++k, ++calls) {
    const auto r = range("stream_enc.call" + std::to_string(k) + ".video_frames");
    const at::Tensor got = vae_->stream_encode(state, video.slice(1, r[0], r[1]));
    const std::string name = "stream_enc.call" + std::to_string(k) + ".latent";
    EXPECT_TRUE(test::close_rel(got, t(name)[0], kRel, name));
    worst = std::max(worst, test::last_diff().max_abs);
  }
  la::test::record_doc_figure("vae.stream_encode.max_abs", worst);
  EXPECT_GE(calls, 2);
}

TEST_F(VaeParity, StreamingDecodeCallByCall) {
  models::WanVaeDecodeState state;
  const at::Tensor latents = t("dec.latent")[0];
  int calls = 0;
  double worst = 0;
  for (int k = 0; io_->count("stream_dec.call" + std::to_string(k) + ".video_raw"); ++k, ++calls) {
    const auto r = range("stream_dec.call" + std::to_string(k) + ".latent_frames");
    const at::Tensor got = vae_->decode(state, latents.slice(1, r[0], r[1]));
    const std::string name = "stream_dec.call" + std::to_string(k) + ".video_raw";
    EXPECT_TRUE(test::close_abs(got, t(name)[0], kDecodeAtol, name));
    worst = std::max(worst, test::last_diff().max_abs);
  }
  la::test::record_doc_figure("vae.stream_decode.max_abs", worst);
  EXPECT_GE(calls, 2);
}

TEST_F(VaeParity, StreamingEqualsFullDecodeOnRandomSplits) {
  at::manual_seed(3);
  const at::Tensor latents = at::randn({16, 13, 4, 6});
  const at::Tensor full = vae_->decode(latents);
  ASSERT_EQ(full.size(1), 1 + 4 * 12);
  for (const std::vector<int64_t>& split : {std::vector<int64_t>(13, 1), std::vector<int64_t>{1, 3, 3, 3, 3},
                                            std::vector<int64_t>{7, 3, 3}, std::vector<int64_t>{3, 3, 3, 3, 1}}) {
    models::WanVaeDecodeState state;
    std::vector<at::Tensor> parts;
    int64_t at_frame = 0;
    for (size_t i = 0; i < split.size(); ++i) {
      const at::Tensor part = vae_->decode(state, latents.slice(1, at_frame, at_frame + split[i]));
      EXPECT_EQ(part.size(1), i == 0 ? 1 + 4 * (split[i] - 1) : 4 * split[i]);
      parts.push_back(part);
      at_frame += split[i];
    }
    EXPECT_TRUE(at::equal(at::cat(parts, 1), full)) << "split starting " << split[0];
    EXPECT_EQ(state.frames_out(), full.size(1));
  }
}

TEST_F(VaeParity, ResetStartsANewStream) {
  at::manual_seed(4);
  const at::Tensor a = at::randn({16, 3, 4, 6}), b = at::randn({16, 3, 4, 6});
  models::WanVaeDecodeState state;
  vae_->decode(state, a);
  state.reset();
  EXPECT_TRUE(at::equal(vae_->decode(state, b), vae_->decode(b)));
}

// The CUDA path runs bf16 with fp32 norms; the same code runs on the CPU with
// dtype bf16, so its casts are exercised here and its distance from fp32 is
// reported. Bound: bf16 keeps 8 bits of mantissa, and the decoder is ~30
// convs deep; measured on the fixture weights, see docs/vae.md.
TEST_F(VaeParity, Bf16PathStaysNearFp32) {
  auto store = io::WeightStore::open(test::parity_file("vae_weights.safetensors"));
  const auto bf16 = models::WanVae::from_store(store, vae_->config(), at::kCPU, at::kBFloat16);
  EXPECT_EQ(bf16->dtype(), at::kBFloat16);
  const at::Tensor latents = t("dec.latent")[0];
  const at::Tensor ref = vae_->decode(latents);
  const at::Tensor got = bf16->decode(latents);
  EXPECT_EQ(got.scalar_type(), at::kFloat);
  const double rel_l2 = ((got - ref).norm() / ref.norm()).item<double>();
  std::printf("[bf16] decode: max|d| = %.3g, relative L2 = %.3g\n", (got - ref).abs().max().item<double>(), rel_l2);
  EXPECT_LT(rel_l2, 0.05);
  la::test::record_doc_figure("vae.bf16.decode.rel_l2", rel_l2);
  la::test::record_doc_figure("vae.bf16.decode.max_abs", (got - ref).abs().max().item<double>());
  const at::Tensor enc = bf16->encode(t("enc.video")[0]);
  const at::Tensor enc_ref = vae_->encode(t("enc.video")[0]);
  const double enc_rel = ((enc - enc_ref).norm() / enc_ref.norm()).item<double>();
  std::printf("[bf16] encode: relative L2 = %.3g\n", enc_rel);
  EXPECT_LT(enc_rel, 0.05);
  la::test::record_doc_figure("vae.bf16.encode.rel_l2", enc_rel);
}

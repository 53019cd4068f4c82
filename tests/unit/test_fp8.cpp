// fp8 linears (the reference's --fp8): the per-tensor scale rule, the
// quantisation error of e4m3, the product against full precision, and the
// DiT with fp8 layers against the same DiT in bf16 (CPU _scaled_mm).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/nn/fp8_linear.h"
#include "engine/session/generation_session.h"
#include "tests/common/figure.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"

using namespace la;

namespace {

double rel_l2(const at::Tensor& a, const at::Tensor& b) {
  return ((a.to(at::kDouble) - b.to(at::kDouble)).norm() / b.to(at::kDouble).norm()).item<double>();
}

}  // namespace

TEST(Fp8, ScaleIsPerTensorAndBoundedBy448) {
  at::Tensor w = at::zeros({16, 16});
  w[3][5] = -2.0f;
  const auto q = nn::quantize_fp8(w);
  EXPECT_EQ(q.weight.scalar_type(), at::kFloat8_e4m3fn);
  EXPECT_FLOAT_EQ(q.scale.item<float>(), 2.0f / 448.0f);  // s = 448 / amax
  EXPECT_FLOAT_EQ(q.weight[3][5].to(at::kFloat).item<float>(), -448.0f);
  // All zeros: amax floors at 1e-12, s caps at 448, no NaN.
  const auto z = nn::quantize_fp8(at::zeros({16, 16}));
  EXPECT_FLOAT_EQ(z.scale.item<float>(), 1.0f / 448.0f);
  EXPECT_TRUE(at::isfinite(z.weight.to(at::kFloat)).all().item<bool>());
}

TEST(Fp8, QuantisationErrorIsThatOfE4m3) {
  at::manual_seed(1);
  const at::Tensor w = at::randn({64, 128});
  const auto q = nn::quantize_fp8(w);
  const at::Tensor back = q.weight.to(at::kFloat) * q.scale;
  // 3 mantissa bits: relative rounding error <= 2^-4 for normal values.
  const at::Tensor big = w.abs() > w.abs().max() / 64;
  EXPECT_LE(((back - w).abs() / w.abs()).masked_select(big).max().item<float>(), 0.0626f);
  EXPECT_LT(rel_l2(back, w), 0.04);
}

TEST(Fp8, LinearMatchesFullPrecisionWithinFp8Error) {
  at::manual_seed(2);
  const at::Tensor x = at::randn({3, 10, 64}), w = at::randn({32, 64}) / 8, b = at::randn({32});
  const at::Tensor ref = at::linear(x, w, b);
  const at::Tensor got = nn::fp8_linear(x, nn::quantize_fp8(w), b);
  EXPECT_EQ(got.sizes(), ref.sizes());
  EXPECT_EQ(got.scalar_type(), at::kFloat);  // back to the input's dtype
  EXPECT_LT(rel_l2(got, ref), 0.06);
  EXPECT_EQ(nn::fp8_linear(x.to(at::kBFloat16), nn::quantize_fp8(w), b).scalar_type(), at::kBFloat16);
}

TEST(Fp8, DitWithFp8LayersStaysCloseToBf16) {
  test::TempDir dir;
  ASSERT_EQ(test::make_tiny_checkpoint(dir.path()), 0);
  const std::string dit_dir = (dir.path() / "Wan2.2-S2V-14B").string();
  const std::string lora = (dir.path() / "LiveAvatar" / "liveavatar.safetensors").string();
  models::S2vDitOptions fp8;
  fp8.fp8 = true;
  const auto a = models::S2vDit::load(dit_dir, lora, at::kCPU, at::kBFloat16);
  const auto b = models::S2vDit::load(dit_dir, lora, at::kCPU, at::kBFloat16, fp8);
  EXPECT_EQ(a->fp8_layers(), 0);
  EXPECT_EQ(b->fp8_layers(), 3 * 10 + 2 * 5);  // 460 at 14B: 40 x 10 + 12 x 5
  auto run = [](const std::shared_ptr<const models::S2vDit>& dit) {
    session::GenerationSession s(dit, 8, 8);
    at::manual_seed(3);
    s.set_prompt(at::randn({4, 32}));
    s.set_reference(at::randn({16, 1, 8, 8}), at::randn({16, 19, 8, 8}));
    std::vector<at::Tensor> out;
    for (int i = 0; i < 3; ++i) out.push_back(s.next_block(at::randn({25, 32, 12})).to(at::kFloat));
    return out;
  };
  const auto xa = run(a), xb = run(b);
  double lo = 1e9, hi = 0;  // docs/dit.md quotes the range
  for (size_t i = 0; i < xa.size(); ++i) {
    const double e = rel_l2(xb[i], xa[i]);
    std::printf("[fp8] block %zu: relative L2 vs bf16 %.4f\n", i, e);
    lo = std::min(lo, e);
    hi = std::max(hi, e);
    EXPECT_LT(e, 0.1);
    EXPECT_FALSE(at::equal(xa[i], xb[i]));
  }
  la::test::record_doc_figure("fp8.dit_block.rel_l2.min", lo);
  la::test::record_doc_figure("fp8.dit_block.rel_l2.max", hi);
}

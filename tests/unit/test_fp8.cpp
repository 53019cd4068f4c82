// fp8 linears (the reference's --fp8): the per-tensor scale rule, the
// quantisation error of e4m3, the product against full precision, and the
// DiT with fp8 layers against the same DiT in bf16 (CPU _scaled_mm).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cmath>

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

// The quantiser makes three passes instead of six; its bits are the rule's (fp8_linear.h),
// written out here in its six steps, for both dtypes the DiT runs, over 16 orders of magnitude,
// with the extreme value on either side.
TEST(Fp8, QuantisedBitsAreTheRulesWrittenOut) {
  at::manual_seed(3);
  auto rule = [](const at::Tensor& t) {
    const at::Tensor f = t.to(at::kFloat);
    const at::Tensor amax = f.abs().max().clamp_min(1e-12);
    const at::Tensor s = (448.0 / amax).clamp_max(448.0);
    return std::make_pair((f * s).clamp(-448.0, 448.0).to(at::kFloat8_e4m3fn), s.reciprocal());
  };
  int cases = 0;
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    for (int e = -8; e <= 8; ++e) {
      const double scale = std::pow(10.0, e);
      for (const double extreme : {1.0, -1.0}) {
        at::Tensor t = (at::randn({48, 80}) * scale);
        t[7][11] = extreme * 4.0 * scale;  // the amax, on either side
        t = t.to(dtype);
        const auto [want, want_inv] = rule(t);
        const auto got = nn::quantize_fp8(t);
        ASSERT_TRUE(at::equal(got.weight.view(at::kByte), want.contiguous().view(at::kByte)))
            << at::toString(dtype) << " scale " << scale << " extreme " << extreme;
        ASSERT_EQ(got.scale.item<float>(), want_inv.item<float>());
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 2 * 17 * 2);
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

// The load-time decision (liveavatargen's NULL->READY): _scaled_mm on CUDA
// needs compute capability >= 8.9 and weight dimensions that are multiples of
// 16; the CPU kernel has neither limit.
TEST(Fp8, SupportDecisionFromCapabilityAndShapes) {
  const std::vector<std::array<int64_t, 2>> fine = {{5120, 5120}, {13824, 5120}, {5120, 13824}, {10240, 5120}};
  const nn::Fp8Target cpu{}, ampere{true, 8, 6}, a100{true, 8, 0}, ada{true, 8, 9}, hopper{true, 9, 0},
      blackwell{true, 12, 0}, volta{true, 7, 5};
  EXPECT_EQ(nn::fp8_unsupported_reason(cpu, fine), "");
  EXPECT_EQ(nn::fp8_unsupported_reason(cpu, {{24, 20}}), "") << "the CPU kernel takes any shape";
  EXPECT_EQ(nn::fp8_unsupported_reason(ada, fine), "");
  EXPECT_EQ(nn::fp8_unsupported_reason(hopper, fine), "");
  EXPECT_EQ(nn::fp8_unsupported_reason(blackwell, fine), "");
  for (const auto& old : {ampere, a100, volta}) {
    const std::string why = nn::fp8_unsupported_reason(old, fine);
    EXPECT_NE(why.find("compute capability 8.9"), std::string::npos) << why;
    EXPECT_NE(why.find(std::to_string(old.major) + "." + std::to_string(old.minor)), std::string::npos) << why;
    EXPECT_NE(nn::fp8_unsupported_reason(old, {}), "") << "the capability alone decides, before any shape is known";
  }
  for (const std::array<int64_t, 2> bad : {std::array<int64_t, 2>{5120, 5128 - 4}, {24, 32}, {32, 8}}) {
    auto shapes = fine;
    shapes.push_back(bad);
    const std::string why = nn::fp8_unsupported_reason(hopper, shapes);
    EXPECT_NE(why.find("multiples of 16"), std::string::npos) << why;
    EXPECT_NE(why.find("[" + std::to_string(bad[0]) + ", " + std::to_string(bad[1]) + "]"), std::string::npos) << why;
  }
}

// convert_to_fp8 checks every layer before it converts any: a refused target
// leaves the weights as they were.
TEST(Fp8, ConversionRefusedBeforeAnyLayerIsConverted) {
  models::DitWeights w;
  w.blocks.resize(1);
  auto& b = w.blocks[0];
  for (models::Linear* l : {&b.self_attn.q, &b.self_attn.k, &b.self_attn.v, &b.self_attn.o, &b.cross_attn.q,
                            &b.cross_attn.k, &b.cross_attn.v, &b.cross_attn.o, &b.ffn_in, &b.ffn_out})
    l->weight = at::randn({32, 32});
  b.ffn_out.weight = at::randn({32, 40});  // 40: not a multiple of 16
  EXPECT_THROW(models::convert_to_fp8(w, {true, 9, 0}), std::invalid_argument);
  EXPECT_THROW(models::convert_to_fp8(w, {true, 8, 6}), std::invalid_argument);
  EXPECT_TRUE(b.self_attn.q.weight.defined()) << "a layer was converted before the refusal";
  EXPECT_FALSE(b.self_attn.q.fp8.weight.defined());
  EXPECT_EQ(models::convert_to_fp8(w, {}), 10) << "the CPU converts them all";
  EXPECT_FALSE(b.ffn_out.weight.defined());
  EXPECT_TRUE(b.ffn_out.fp8.weight.is_contiguous());
}

// A non-contiguous weight or input (a transposed view) gives the same product
// as its contiguous copy: both are made row-major before quantising.
TEST(Fp8, NonContiguousInputsAreMadeContiguous) {
  at::manual_seed(3);
  const at::Tensor w = at::randn({48, 32});
  const at::Tensor wt = at::randn({32, 48}).t();  // [48, 32], column-major
  const at::Tensor x = at::randn({32, 16}).t();   // [16, 32], column-major
  ASSERT_FALSE(wt.is_contiguous());
  ASSERT_FALSE(x.is_contiguous());
  const auto qt = nn::quantize_fp8(wt);
  EXPECT_TRUE(qt.weight.is_contiguous());
  EXPECT_TRUE(at::equal(qt.weight.to(at::kFloat), nn::quantize_fp8(wt.contiguous()).weight.to(at::kFloat)));
  const at::Tensor got = nn::fp8_linear(x, nn::quantize_fp8(w), at::Tensor());
  const at::Tensor want = nn::fp8_linear(x.contiguous(), nn::quantize_fp8(w), at::Tensor());
  EXPECT_TRUE(at::equal(got, want));
}

// LoRA merge at load: W + alpha/r * B@A in fp32, every LoRA tensor must find
// its base weight, the file naming variants are accepted, and the mapped base
// checkpoint is never written to. The merged weights are compared with peft's
// (the reference's library and merge, tests/unit/peft_lora_merge.py) on the
// release's key layout, in float32 and bfloat16.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cmath>
#include <cstdlib>

#include "engine/io/checkpoint_error.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/safetensors_writer.h"
#include "engine/io/weight_store.h"
#include "engine/models/s2v_dit/lora_merge.h"
#include "tests/common/expect_error.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"
#include "tests/common/torch_python.h"

using namespace la;
using la::test::error_of;
using la::test::expect_contains;

namespace {

class LoraMerge : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_EQ(test::make_tiny_checkpoint(dir_->path()), 0) << "la-mkcheckpoint ($LA_MKCHECKPOINT)";
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string lora_path() { return (dir_->path() / "LiveAvatar" / "liveavatar.safetensors").string(); }
  static std::map<std::string, at::Tensor> base() {
    auto store = io::WeightStore::open((dir_->path() / "Wan2.2-S2V-14B").string());
    std::map<std::string, at::Tensor> m;
    for (const auto& k : store.keys()) m[k] = store.get_unchecked(k);
    return m;
  }
  static test::TempDir* dir_;
};
test::TempDir* LoraMerge::dir_ = nullptr;

}  // namespace

TEST_F(LoraMerge, AddsScaledProductToEveryTarget) {
  auto weights = base();
  const at::Tensor before = weights.at("blocks.1.ffn.0.weight").clone();
  auto lora = io::WeightStore::open(lora_path());
  const double alpha = models::lora_alpha(lora_path());
  EXPECT_DOUBLE_EQ(alpha, 2.0);
  const auto r = models::merge_lora(weights, lora, alpha);
  EXPECT_EQ(r.merged_modules, 38);  // 10 per block x 3 + 4 per injector x 2
  EXPECT_EQ(r.rank, 4);
  EXPECT_DOUBLE_EQ(r.scale, 0.5);
  EXPECT_TRUE(lora.unused_keys().empty());
  // Independent check in double precision.
  const at::Tensor a = lora.get_unchecked("base_model.model.blocks.1.ffn.0.lora_A.default.weight").to(at::kDouble);
  const at::Tensor b = lora.get_unchecked("base_model.model.blocks.1.ffn.0.lora_B.default.weight").to(at::kDouble);
  const at::Tensor want = before.to(at::kDouble) + 0.5 * at::matmul(b, a);
  EXPECT_LT((weights.at("blocks.1.ffn.0.weight").to(at::kDouble) - want).abs().max().item<double>(), 1e-6);
  EXPECT_FALSE(at::equal(weights.at("blocks.1.ffn.0.weight"), before));
  // The checkpoint file itself is untouched.
  EXPECT_TRUE(at::equal(base().at("blocks.1.ffn.0.weight"), before));
}

TEST_F(LoraMerge, AcceptsNamesWithoutPrefixOrDefault) {
  std::map<std::string, at::Tensor> renamed;
  for (auto& [k, t] : io::SafetensorsFile(lora_path()).tensors()) {
    std::string n = k.substr(std::string("base_model.model.").size());
    n.replace(n.find(".default"), 8, "");
    renamed[n] = t;
  }
  test::TempDir tmp;
  io::NamedTensors named(renamed.begin(), renamed.end());
  io::write_safetensors(tmp.file("plain.safetensors"), named);
  auto w1 = base(), w2 = base();
  auto l1 = io::WeightStore::open(lora_path()), l2 = io::WeightStore::open(tmp.file("plain.safetensors"));
  models::merge_lora(w1, l1, 2.0);
  EXPECT_EQ(models::merge_lora(w2, l2, 2.0).merged_modules, 38);
  for (const auto& [k, t] : w1) EXPECT_TRUE(at::equal(t, w2.at(k))) << k;
}

TEST_F(LoraMerge, LoraForAnotherModelIsAnError) {
  test::TempDir tmp;
  io::write_safetensors(tmp.file("other.safetensors"),
                        {{"blocks.0.self_attn.q.lora_A.weight", at::zeros({4, 128})},
                         {"blocks.0.self_attn.q.lora_B.weight", at::zeros({128, 4})}});
  auto w = base();
  auto l = io::WeightStore::open(tmp.file("other.safetensors"));
  expect_contains(error_of<io::CheckpointError>([&] { models::merge_lora(w, l, 2.0); }),
                  "do not fit blocks.0.self_attn.q.weight [64,64]");
}

TEST_F(LoraMerge, UnmatchedAndIncompleteAdaptersAreErrors) {
  test::TempDir tmp;
  io::write_safetensors(tmp.file("stray.safetensors"),
                        {{"blocks.9.self_attn.q.lora_A.weight", at::zeros({4, 64})},
                         {"blocks.9.self_attn.q.lora_B.weight", at::zeros({64, 4})}});
  io::write_safetensors(tmp.file("half.safetensors"), {{"blocks.0.ffn.0.lora_A.weight", at::zeros({4, 64})}});
  io::write_safetensors(tmp.file("junk.safetensors"), {{"not.a.dit.key", at::zeros({1})}});
  auto w = base();
  auto stray = io::WeightStore::open(tmp.file("stray.safetensors"));
  expect_contains(error_of<io::CheckpointError>([&] { models::merge_lora(w, stray, 2.0); }),
                  "adapts blocks.9.self_attn.q, which the DiT does not have");
  auto half = io::WeightStore::open(tmp.file("half.safetensors"));
  expect_contains(error_of<io::CheckpointError>([&] { models::merge_lora(w, half, 2.0); }), "has no lora_B partner");
  auto junk = io::WeightStore::open(tmp.file("junk.safetensors"));
  expect_contains(error_of<io::CheckpointError>([&] { models::merge_lora(w, junk, 2.0); }),
                  "tensor not.a.dit.key: matches no tensor of the DiT");
}

TEST_F(LoraMerge, NonLoraTensorsOverwriteLikeTheReference) {
  test::TempDir tmp;
  io::write_safetensors(tmp.file("full.safetensors"), {{"base_model.model.head.modulation", at::ones({1, 2, 64})}});
  auto w = base();
  auto l = io::WeightStore::open(tmp.file("full.safetensors"));
  const auto r = models::merge_lora(w, l, 2.0);
  EXPECT_EQ(r.replaced_tensors, 1);
  EXPECT_TRUE(at::equal(w.at("head.modulation"), at::ones({1, 2, 64})));
}

namespace {

// Merges a tiny checkpoint of `dtype` (la-mkcheckpoint) with the engine and with
// peft, whose module matching, key mapping, rank/alpha and scaling are its own,
// and compares every merged weight.
void expect_same_merge_as_peft(const char* py, const std::string& dtype) {
  const char* tool = std::getenv("LA_MKCHECKPOINT");
  ASSERT_NE(tool, nullptr) << "LA_MKCHECKPOINT not set";
  const char* src = std::getenv("LA_SOURCE_DIR");
  test::TempDir dir;
  ASSERT_EQ(std::system((std::string(tool) + " --scale tiny --seed 7 --dtype " + dtype + " --out " +
                         dir.path().string() + " >/dev/null 2>&1")
                            .c_str()),
            0);
  const std::string dit = dir.file("Wan2.2-S2V-14B");
  const std::string lora_path = dir.file("LiveAvatar/liveavatar.safetensors");
  const std::string out = dir.file("peft.safetensors");
  const std::string cmd = std::string(py) + " " + (src ? src : ".") + "/tests/unit/peft_lora_merge.py " + dit + " " +
                          lora_path + " " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  auto store = io::WeightStore::open(dit);
  std::map<std::string, at::Tensor> base, merged;
  for (const auto& k : store.keys()) base[k] = merged[k] = store.get_unchecked(k);
  auto lora = io::WeightStore::open(lora_path);
  const auto report = models::merge_lora(merged, lora, models::lora_alpha(lora_path));

  const io::SafetensorsFile peft(out);
  const auto want = peft.tensors();
  ASSERT_EQ(peft.metadata().at("modules"), "38");
  ASSERT_EQ(want.size(), 38u);  // 10 per block x 3 + 4 per injector x 2, as peft matched them
  EXPECT_EQ(report.merged_modules, 38);
  EXPECT_EQ(std::to_string(report.rank), peft.metadata().at("rank"));
  const double scale = std::stod(peft.metadata().at("alpha")) / std::stod(peft.metadata().at("rank"));
  EXPECT_DOUBLE_EQ(report.scale, scale);

  // Both sides compute W + s * sum_k B[i,k] A[k,j] in float32 and round it to
  // W's dtype; only the order of the r products and additions may differ. Each
  // float32 step errs by at most eps32 of the magnitudes involved, so the two
  // float32 sums differ by at most (r + 1) * eps32 * (|W| + s * (|B| @ |A|)),
  // and rounding those to W's dtype can land on neighbouring values: one ulp
  // of the dtype at the result. A wrong scale, a swapped pair or a transposed
  // factor moves the weights by the order of s * |B @ A| (about 10% of |W|
  // here), far beyond this.
  const double eps32 = std::ldexp(1.0, -23);
  const double ulp = dtype == "bf16" ? std::ldexp(1.0, -7) : eps32;
  for (const auto& [key, expected] : want) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(merged.count(key)) << "peft merged a weight the DiT does not have";
    const at::Tensor got = merged.at(key);
    ASSERT_EQ(got.scalar_type(), expected.scalar_type());
    ASSERT_EQ(got.sizes(), expected.sizes());
    const std::string module = "base_model.model." + key.substr(0, key.size() - std::string(".weight").size());
    const at::Tensor a = lora.get_unchecked(module + ".lora_A.default.weight").to(at::kDouble).abs();
    const at::Tensor b = lora.get_unchecked(module + ".lora_B.default.weight").to(at::kDouble).abs();
    const at::Tensor p = expected.to(at::kDouble);
    const at::Tensor bound = ulp * p.abs() + (report.rank + 1) * eps32 * (base.at(key).to(at::kDouble).abs() + scale * at::matmul(b, a));
    const at::Tensor diff = (got.to(at::kDouble) - p).abs();
    EXPECT_TRUE(diff.le(bound).all().item<bool>())
        << "max |engine - peft| " << diff.max().item<double>() << ", " << diff.gt(bound).sum().item<int64_t>()
        << " elements past the bound; " << diff.ne(0).sum().item<int64_t>() << " of " << diff.numel() << " differ";
    EXPECT_FALSE(at::equal(got, base.at(key))) << "the LoRA left this weight unchanged";
  }
  for (const auto& [key, t] : merged) {
    if (!want.count(key)) {
      EXPECT_TRUE(at::equal(t, base.at(key))) << key << " changed, but peft merged nothing into it";
    }
  }
}

}  // namespace

TEST(LoraMergeVsPeft, Float32) {
  LA_REQUIRE_TORCH_PYTHON(py);
  expect_same_merge_as_peft(py, "f32");
}

TEST(LoraMergeVsPeft, BFloat16) {
  LA_REQUIRE_TORCH_PYTHON(py);
  expect_same_merge_as_peft(py, "bf16");
}

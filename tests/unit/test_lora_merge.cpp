// LoRA merge at load: W + alpha/r * B@A in fp32, every LoRA tensor must find
// its base weight, the file naming variants are accepted, and the mapped base
// checkpoint is never written to.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cstdlib>

#include "engine/io/checkpoint_error.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/safetensors_writer.h"
#include "engine/io/weight_store.h"
#include "engine/models/s2v_dit/lora_merge.h"
#include "tests/common/expect_error.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"

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

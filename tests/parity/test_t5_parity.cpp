// parity-t5: the umT5 encoder against the reference's golden outputs
// (t5_weights / t5_io), built from the fixture's own config.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/io/json_config.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/weight_store.h"
#include "engine/models/umt5/encoder.h"
#include "tests/common/figure.h"
#include "tests/parity/compare.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

constexpr double kRel = 1e-4;  // README: max|d| <= 1e-4 * max(1, max|ref|)

class T5Parity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string weights = test::parity_file("t5_weights.safetensors");
    const auto cfg = models::Umt5Config::from_json(test::fixture_config(weights));
    auto store = io::WeightStore::open(weights);
    t5_ = models::Umt5Encoder::from_store(store, cfg, at::kCPU, at::kFloat);
    io_ = new std::map<std::string, at::Tensor>(io::SafetensorsFile(test::parity_file("t5_io.safetensors")).tensors());
  }
  static void TearDownTestSuite() {
    delete io_;
    t5_.reset();
  }
  static const at::Tensor& t(const std::string& name) { return io_->at(name); }
  static std::shared_ptr<const models::Umt5Encoder> t5_;
  static std::map<std::string, at::Tensor>* io_;
};
std::shared_ptr<const models::Umt5Encoder> T5Parity::t5_;
std::map<std::string, at::Tensor>* T5Parity::io_ = nullptr;

}  // namespace

TEST_F(T5Parity, RelativePositionBuckets) {
  const int64_t len = t("dbg.rel_buckets").size(0);
  EXPECT_TRUE(at::equal(models::Umt5Encoder::relative_position_buckets(len, len, t5_->config().num_buckets),
                        t("dbg.rel_buckets")));
}

TEST_F(T5Parity, PositionBiasOfEachBlock) {
  const int64_t len = t("dbg.rel_buckets").size(0);
  for (int64_t b = 0; io_->count("dbg.pos_bias.block" + std::to_string(b)); ++b) {
    const std::string name = "dbg.pos_bias.block" + std::to_string(b);
    EXPECT_TRUE(test::close_rel(t5_->position_bias(b, len, len), t(name), kRel, name));
  }
}

TEST_F(T5Parity, MaskedBatch) {
  EXPECT_TRUE(test::close_rel(t5_->forward(t("ids"), t("mask")), t("hidden"), kRel, "hidden"));
  la::test::record_doc_figure("t5.hidden.masked.max_abs", test::last_diff().max_abs);  // docs/text-and-audio.md
  EXPECT_TRUE(at::equal(t("mask").gt(0).sum(1), t("seq_lens")));
}

TEST_F(T5Parity, WithoutMask) {
  EXPECT_TRUE(test::close_rel(t5_->forward(t("nomask.ids")), t("nomask.hidden"), kRel, "nomask.hidden"));
  la::test::record_doc_figure("t5.hidden.unmasked.max_abs", test::last_diff().max_abs);
}

TEST_F(T5Parity, BadIdsAreRefused) {
  EXPECT_THROW(t5_->forward(at::full({1, 4}, t5_->config().vocab, at::kLong)), std::invalid_argument);
  EXPECT_THROW(t5_->forward(at::full({1, 4}, -1, at::kLong)), std::invalid_argument);
  EXPECT_THROW(t5_->forward(at::zeros({4}, at::kLong)), std::invalid_argument);
  EXPECT_THROW(t5_->forward(at::zeros({1, 4}, at::kLong), at::ones({1, 5})), std::invalid_argument);
}

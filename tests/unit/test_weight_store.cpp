// WeightStore: lookup with shape checks, unused keys, sharded indexes.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/io/checkpoint_error.h"
#include "engine/io/safetensors_writer.h"
#include "engine/io/weight_store.h"
#include "tests/common/expect_error.h"
#include "tests/common/temp_dir.h"

using namespace la::io;
using la::test::error_of;
using la::test::expect_contains;

TEST(WeightStore, GetChecksShapeAndDtypeAndNamesTheFile) {
  la::test::TempDir dir;
  const auto path = dir.file("m.safetensors");
  write_safetensors(path, {{"a.weight", at::zeros({4, 3})}, {"a.bias", at::zeros({4})}});
  auto w = WeightStore::open(path);
  EXPECT_EQ(w.get("a.weight", {4, 3}).sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(error_of<CheckpointError>([&] { w.get("a.bias", {5}); }),
            "file " + path + ": tensor a.bias has shape [4], expected [5]");
  EXPECT_EQ(error_of<CheckpointError>([&] { w.get("a.bias", {4}, at::kBFloat16); }),
            "file " + path + ": tensor a.bias has dtype Float, expected BFloat16");
  EXPECT_NE(error_of<CheckpointError>([&] { w.get("nope", {1}); }).find("tensor nope is missing"), std::string::npos);
}

TEST(WeightStore, ReportsKeysNeverRead) {
  la::test::TempDir dir;
  write_safetensors(dir.file("m.safetensors"), {{"x", at::zeros({1})}, {"y", at::zeros({1})}, {"z", at::zeros({1})}});
  auto w = WeightStore::open(dir.file("m.safetensors"));
  w.get("x", {1});
  w.get_unchecked("z");
  EXPECT_EQ(w.unused_keys(), std::vector<std::string>{"y"});
}

TEST(WeightStore, ShardedIndexDirectory) {
  la::test::TempDir dir;
  write_safetensors(dir.file("m-00001-of-00002.safetensors"), {{"a", at::full({2}, 1.0)}});
  write_safetensors(dir.file("m-00002-of-00002.safetensors"), {{"b", at::full({3}, 2.0)}});
  la::test::write_bytes(dir.file("m.safetensors.index.json"),
                        R"({"metadata":{"total_size":20},"weight_map":{"a":"m-00001-of-00002.safetensors","b":"m-00002-of-00002.safetensors"}})");
  auto w = WeightStore::open(dir.path().string());
  EXPECT_EQ(w.size(), 2u);
  EXPECT_TRUE(at::equal(w.get("b", {3}), at::full({3}, 2.0)));
  EXPECT_EQ(w.file_of("a"), dir.file("m-00001-of-00002.safetensors"));
}

TEST(WeightStore, AKeyInTwoFilesIsAnError) {
  la::test::TempDir dir;
  write_safetensors(dir.file("a.safetensors"), {{"k", at::zeros({1})}});
  write_safetensors(dir.file("b.safetensors"), {{"k", at::zeros({1})}});
  auto w = WeightStore::open(dir.file("a.safetensors"));
  EXPECT_NE(error_of<CheckpointError>([&] { w.add_file(dir.file("b.safetensors")); }).find("tensor k: also present in"),
            std::string::npos);
}

// Checkpoints with missing, mis-shaped or inconsistent tensors.
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

TEST(WeightsBadInput, MissingAndMisShapedKeys) {
  la::test::TempDir dir;
  const auto p = dir.file("dit.safetensors");
  write_safetensors(p, {{"blocks.0.self_attn.q.weight", at::zeros({64, 32})}});
  auto w = WeightStore::open(p);
  expect_contains(error_of<CheckpointError>([&] { w.get("blocks.0.self_attn.k.weight", {64, 64}); }),
                  "tensor blocks.0.self_attn.k.weight is missing");
  expect_contains(error_of<CheckpointError>([&] { w.get("blocks.0.self_attn.q.weight", {64, 64}); }),
                  "file " + p + ": tensor blocks.0.self_attn.q.weight has shape [64,32], expected [64,64]");
}

TEST(WeightsBadInput, IndexNamesAKeyItsShardLacks) {
  la::test::TempDir dir;
  write_safetensors(dir.file("s1.safetensors"), {{"a", at::zeros({1})}});
  la::test::write_bytes(dir.file("m.safetensors.index.json"),
                        R"({"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}})");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.file("m.safetensors.index.json")); }),
                  "tensor b: listed in weight_map for s1.safetensors, which does not hold it");
}

TEST(WeightsBadInput, ShardHoldsAKeyTheIndexDoesNotList) {
  la::test::TempDir dir;
  write_safetensors(dir.file("s1.safetensors"), {{"a", at::zeros({1})}, {"stray", at::zeros({1})}});
  la::test::write_bytes(dir.file("m.safetensors.index.json"), R"({"weight_map":{"a":"s1.safetensors"}})");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.file("m.safetensors.index.json")); }),
                  "tensor stray: not listed in m.safetensors.index.json");
}

TEST(WeightsBadInput, ShardNameMayNotLeaveTheDirectory) {
  la::test::TempDir dir;
  la::test::write_bytes(dir.file("m.safetensors.index.json"), R"({"weight_map":{"a":"../../etc/passwd"}})");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.file("m.safetensors.index.json")); }),
                  "is not a plain file name");
}

TEST(WeightsBadInput, MissingShardFile) {
  la::test::TempDir dir;
  la::test::write_bytes(dir.file("m.safetensors.index.json"), R"({"weight_map":{"a":"gone.safetensors"}})");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.file("m.safetensors.index.json")); }),
                  "gone.safetensors: cannot open");
}

TEST(WeightsBadInput, IndexWithoutWeightMap) {
  la::test::TempDir dir;
  la::test::write_bytes(dir.file("m.safetensors.index.json"), R"({"metadata":{}})");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.file("m.safetensors.index.json")); }),
                  "missing key 'weight_map'");
}

TEST(WeightsBadInput, UnknownFormatAndMissingPaths) {
  la::test::TempDir dir;
  la::test::write_bytes(dir.file("w.onnx"), "x");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.file("w.onnx")); }), "unknown checkpoint format");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.file("absent.safetensors")); }), "does not exist");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.path().string()); }),
                  "expected one *.safetensors.index.json or one .safetensors file");
}

TEST(WeightsBadInput, EmptyFileIsRejected) {
  la::test::TempDir dir;
  la::test::write_bytes(dir.file("e.safetensors"), "");
  expect_contains(error_of<CheckpointError>([&] { WeightStore::open(dir.file("e.safetensors")); }), "too short");
}

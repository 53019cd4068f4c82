// The VAE refuses bad tensors and checkpoints with errors a user can act on.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/io/checkpoint_error.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/safetensors_writer.h"
#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/models/wan_vae/wan_vae.h"
#include "tests/common/expect_error.h"
#include "tests/common/temp_dir.h"
#include "tests/parity/parity_dir.h"

using namespace la;
using la::test::error_of;
using la::test::expect_contains;

namespace {

std::map<std::string, at::Tensor> fixture_weights() {
  return io::SafetensorsFile(test::parity_file("vae_weights.safetensors")).tensors();
}

std::shared_ptr<const models::WanVae> load(const std::map<std::string, at::Tensor>& tensors) {
  io::WeightStore store;
  store.add_tensors("vae.pth", tensors);
  return models::WanVae::from_store(store, models::infer_wan_vae_config(store), at::kCPU, at::kFloat);
}

}  // namespace

TEST(VaeBadInput, WrongChannelCount) {
  const auto vae = load(fixture_weights());
  expect_contains(error_of<std::invalid_argument>([&] { vae->encode(at::zeros({4, 5, 16, 16})); }),
                  "video must have 3 channels, got shape [4,5,16,16]");
  expect_contains(error_of<std::invalid_argument>([&] { vae->decode(at::zeros({8, 3, 2, 2})); }),
                  "latents must have 16 channels, got shape [8,3,2,2]");
  expect_contains(error_of<std::invalid_argument>([&] { vae->decode(at::zeros({16, 3, 2})); }),
                  "latents must be a 4-D tensor [C,T,H,W], got [16,3,2]");
}

TEST(VaeBadInput, SpatialSizeNotAMultipleOf8) {
  const auto vae = load(fixture_weights());
  expect_contains(error_of<std::invalid_argument>([&] { vae->encode(at::zeros({3, 5, 20, 16})); }),
                  "multiples of 8, got [3,5,20,16]");
}

TEST(VaeBadInput, FrameCountNotOnePlusFourK) {
  const auto vae = load(fixture_weights());
  expect_contains(error_of<std::invalid_argument>([&] { vae->encode(at::zeros({3, 4, 16, 16})); }),
                  "frame count must be 1+4k, got 4");
  models::WanVaeEncodeState state;
  vae->stream_encode(state, at::zeros({3, 1, 16, 16}));
  expect_contains(error_of<std::invalid_argument>([&] { vae->stream_encode(state, at::zeros({3, 3, 16, 16})); }),
                  "multiples of 4 frames, got 3");
  expect_contains(error_of<std::invalid_argument>([&] { vae->decode(at::zeros({16, 0, 2, 2})); }), "has no frames");
}

TEST(VaeBadInput, MissingKey) {
  auto w = fixture_weights();
  w.erase("decoder.upsamples.7.time_conv.bias");
  expect_contains(error_of<io::CheckpointError>([&] { load(w); }),
                  "file vae.pth: tensor decoder.upsamples.7.time_conv.bias is missing");
}

TEST(VaeBadInput, MisShapedKey) {
  auto w = fixture_weights();
  w["decoder.middle.1.proj.weight"] = at::zeros({32, 16, 1, 1});
  expect_contains(error_of<io::CheckpointError>([&] { load(w); }),
                  "file vae.pth: tensor decoder.middle.1.proj.weight has shape [32,16,1,1], expected [32,32,1,1]");
}

TEST(VaeBadInput, StrayKey) {
  auto w = fixture_weights();
  w["decoder.extra.weight"] = at::zeros({1});
  expect_contains(error_of<io::CheckpointError>([&] { load(w); }),
                  "tensor decoder.extra.weight: is not part of a Wan 2.1 VAE");
}

TEST(VaeBadInput, NotAVaeFile) {
  la::test::TempDir dir;
  io::write_safetensors(dir.file("dit.safetensors"), {{"patch_embedding.weight", at::zeros({4, 16, 1, 2, 2})}});
  expect_contains(error_of<io::CheckpointError>([&] { models::WanVae::load(dir.file("dit.safetensors"), at::kCPU, at::kFloat); }),
                  "tensor encoder.conv1.weight is missing");
}

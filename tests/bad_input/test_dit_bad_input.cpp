// The DiT and its session refuse bad checkpoints and bad inputs with errors a
// user can act on (which file, which tensor, expected vs got).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/io/checkpoint_error.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/safetensors_writer.h"
#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/session/generation_session.h"
#include "tests/common/expect_error.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"
#include "tests/parity/parity_dir.h"

using namespace la;
using la::test::error_of;
using la::test::expect_contains;
namespace fs = std::filesystem;

namespace {

struct FixtureDit {
  models::S2vDitConfig cfg;
  std::map<std::string, at::Tensor> tensors;
};

FixtureDit fixture() {
  const std::string w = test::parity_file("dit_weights.safetensors");
  return {models::S2vDitConfig::from_json(test::fixture_config(w)), io::SafetensorsFile(w).tensors()};
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void replace_in_file(const fs::path& p, const std::string& from, const std::string& to) {
  std::string text = read_text(p);
  const auto pos = text.find(from);
  ASSERT_NE(pos, std::string::npos) << from << " not in " << p;
  text.replace(pos, from.size(), to);
  std::ofstream(p) << text;
}

class DitCheckpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_EQ(test::make_tiny_checkpoint(dir_->path()), 0) << "la-mkcheckpoint ($LA_MKCHECKPOINT)";
  }
  static void TearDownTestSuite() { delete dir_; }
  // A copy of the tiny DiT directory a test may damage.
  fs::path copy_dit() {
    const fs::path to = scratch_.path() / "Wan2.2-S2V-14B";
    fs::copy(dir_->path() / "Wan2.2-S2V-14B", to, fs::copy_options::recursive);
    return to;
  }
  static std::string dit_dir() { return (dir_->path() / "Wan2.2-S2V-14B").string(); }
  static std::string lora() { return (dir_->path() / "LiveAvatar" / "liveavatar.safetensors").string(); }
  test::TempDir scratch_;
  static test::TempDir* dir_;
};
test::TempDir* DitCheckpoint::dir_ = nullptr;

}  // namespace

TEST(DitBadInput, MissingTensorIsNamed) {
  auto f = fixture();
  f.tensors.erase("blocks.1.ffn.0.weight");
  expect_contains(error_of<io::CheckpointError>(
                      [&] { models::S2vDit::from_tensors(f.tensors, f.cfg, at::kCPU, at::kFloat, {}, "dit.safetensors"); }),
                  "blocks.1.ffn.0.weight");
}

// The fixture's sizes come from its metadata (other fixture sets use other tiny configs).
std::string str(int64_t v) { return std::to_string(v); }

TEST(DitBadInput, MisShapedTensorGivesExpectedAndGotShapes) {
  auto f = fixture();
  const int64_t dim = f.cfg.dim;
  f.tensors["blocks.0.self_attn.q.weight"] = at::zeros({dim, dim / 2});
  const std::string msg = error_of<io::CheckpointError>(
      [&] { models::S2vDit::from_tensors(f.tensors, f.cfg, at::kCPU, at::kFloat, {}, "dit.safetensors"); });
  expect_contains(msg, "file dit.safetensors");
  expect_contains(msg, "blocks.0.self_attn.q.weight");
  expect_contains(msg, "[" + str(dim) + "," + str(dim / 2) + "]");
  expect_contains(msg, "[" + str(dim) + "," + str(dim) + "]");
}

TEST(DitBadInput, WrongInputShapesAreExplained) {
  const auto f = fixture();
  const int64_t a = f.cfg.audio_dim, t = f.cfg.text_dim, len = f.cfg.text_len;
  const auto dit = models::S2vDit::from_tensors(f.tensors, f.cfg, at::kCPU, at::kFloat);
  expect_contains(error_of<std::invalid_argument>([&] { dit->condition_block(at::zeros({25, a, 10}), {}, 0, 8, 16); }),
                  "audio block must be [25, " + str(a) + ", 12]");
  expect_contains(error_of<std::invalid_argument>([&] { dit->condition_block(at::zeros({25, a, 12}), {}, 0, 7, 16); }),
                  "not divisible by the DiT's 2x2 patch");
  expect_contains(error_of<std::invalid_argument>([&] { dit->encode_prompt(at::zeros({len + 4, t})); }),
                  str(len + 4) + " tokens, more than the DiT's text_len " + str(len));
  expect_contains(error_of<std::invalid_argument>([&] { dit->encode_prompt(at::zeros({5, t - 1})); }),
                  "text context must be [tokens, " + str(t) + "], got [5," + str(t - 1) + "]");
  expect_contains(error_of<std::invalid_argument>(
                      [&] { dit->prefill_sink(at::zeros({16, 1, 8, 16}), at::zeros({16, 19, 8, 14}), {}); }),
                  "same h x w");
}

TEST(DitBadInput, SessionRefusesBadSizesAndMissingConditioning) {
  const auto f = fixture();
  const int64_t a = f.cfg.audio_dim;
  const auto dit = models::S2vDit::from_tensors(f.tensors, f.cfg, at::kCPU, at::kFloat);
  expect_contains(error_of<std::invalid_argument>([&] { session::GenerationSession(dit, 7, 16); }),
                  "latent size 7x16 is not divisible");
  session::SessionOptions zero_steps;
  zero_steps.steps = 0;
  EXPECT_THROW(session::GenerationSession(dit, 8, 16, zero_steps), std::invalid_argument);
  session::GenerationSession s(dit, 8, 16);
  expect_contains(error_of<std::logic_error>([&] { s.next_block(at::zeros({25, a, 12})); }),
                  "needs a prompt and a reference image");
  expect_contains(error_of<std::invalid_argument>([&] { s.set_reference(at::zeros({16, 1, 8, 8}), at::zeros({16, 19, 8, 8})); }),
                  "reference latent must be [16, 1, 8, 16]");
  s.set_prompt(at::zeros({3, f.cfg.text_dim}));
  s.set_reference(at::zeros({16, 1, 8, 16}), at::zeros({16, 19, 8, 16}));
  expect_contains(error_of<std::invalid_argument>([&] { s.next_block(at::zeros({25, a + 1, 12})); }),
                  "audio block must be [25, " + str(a) + ", 12]");
}

TEST_F(DitCheckpoint, ConfigThatDoesNotMatchTheTensors) {
  const fs::path d = copy_dit();
  replace_in_file(d / "config.json", "\"num_layers\": 3", "\"num_layers\": 2");
  replace_in_file(d / "config.json", "    2\n  ]", "    1\n  ]");  // audio_inject_layers [0, 2] -> [0, 1]
  const std::string msg =
      error_of<io::CheckpointError>([&] { models::S2vDit::load(d.string(), "", at::kCPU, at::kFloat); });
  expect_contains(msg, "blocks.2.");
  expect_contains(msg, "is not part of an S2V DiT with the dimensions of");
  replace_in_file(d / "config.json", "\"num_layers\": 2", "\"num_layers\": 3");
  replace_in_file(d / "config.json", "\"ffn_dim\": 128", "\"ffn_dim\": 96");
  expect_contains(error_of<io::CheckpointError>([&] { models::S2vDit::load(d.string(), "", at::kCPU, at::kFloat); }),
                  "ffn.0.weight has shape [128,64], expected [96,64]");
}

TEST_F(DitCheckpoint, MissingDirectoryOrConfigIsNamed) {
  expect_contains(error_of<io::CheckpointError>(
                      [&] { models::S2vDit::load("/nonexistent/Wan2.2-S2V-14B", "", at::kCPU, at::kFloat); }),
                  "/nonexistent/Wan2.2-S2V-14B/config.json");
}

TEST_F(DitCheckpoint, LoraOfAnotherModelIsRefused) {
  // Rank-4 adapters for a 96-wide model do not fit the tiny DiT's 64-wide linears.
  const std::string other = scratch_.file("other.safetensors");
  io::write_safetensors(other, {{"base_model.model.blocks.0.self_attn.q.lora_A.default.weight", at::zeros({4, 96})},
                                {"base_model.model.blocks.0.self_attn.q.lora_B.default.weight", at::zeros({96, 4})}},
                        {});
  expect_contains(error_of<io::CheckpointError>([&] { models::S2vDit::load(dit_dir(), other, at::kCPU, at::kFloat); }),
                  "blocks.0.self_attn.q");
  // Adapters for modules this DiT does not have.
  const std::string deeper = scratch_.file("deeper.safetensors");
  io::write_safetensors(deeper, {{"base_model.model.blocks.7.ffn.0.lora_A.default.weight", at::zeros({4, 64})},
                                 {"base_model.model.blocks.7.ffn.0.lora_B.default.weight", at::zeros({128, 4})}},
                        {});
  expect_contains(error_of<io::CheckpointError>([&] { models::S2vDit::load(dit_dir(), deeper, at::kCPU, at::kFloat); }),
                  "blocks.7.ffn.0");
  // The real one loads.
  EXPECT_NO_THROW(models::S2vDit::load(dit_dir(), lora(), at::kCPU, at::kFloat));
}

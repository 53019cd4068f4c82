// la-mkcheckpoint --scale tiny writes the release layout, and every file it
// writes loads through the engine with exactly the keys the layouts name.
#include <gtest/gtest.h>

#include "tests/common/torch_python.h"

#include <ATen/ATen.h>
#include <cstdlib>
#include <sys/wait.h>
#include <utility>
#include <sentencepiece_processor.h>

#include "engine/io/json_config.h"
#include "engine/io/weight_store.h"
#include "engine/models/lora_layout.h"
#include "engine/models/s2v_dit_layout.h"
#include "engine/models/umt5_layout.h"
#include "engine/models/wan_vae_layout.h"
#include "engine/models/wav2vec2_layout.h"
#include "tests/common/temp_dir.h"

using namespace la;

namespace {

int run_tool(const std::string& args) {
  const char* tool = std::getenv("LA_MKCHECKPOINT");
  if (!tool) return -1;
  return std::system((std::string(tool) + " " + args + " >/dev/null").c_str());
}

// Loads `path`, reads every key the layout names with its shape, and checks
// nothing is left over.
void expect_layout(const std::string& path, const std::vector<models::TensorSpec>& specs) {
  auto w = io::WeightStore::open(path);
  for (const auto& s : specs) {
    const at::Tensor t = w.get(s.name, s.shape);
    EXPECT_TRUE(at::isfinite(t.to(at::kFloat)).all().item<bool>()) << s.name;
  }
  EXPECT_EQ(w.unused_keys(), std::vector<std::string>{}) << path;
  EXPECT_EQ(w.size(), specs.size()) << path;
}

class MkCheckpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_EQ(run_tool("--scale tiny --seed 7 --out " + dir_->path().string()), 0);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string base() { return (dir_->path() / "Wan2.2-S2V-14B").string(); }
  static test::TempDir* dir_;
};
test::TempDir* MkCheckpoint::dir_ = nullptr;

}  // namespace

TEST_F(MkCheckpoint, DitShardsFollowTheIndexAndConfig) {
  const auto cfg = models::S2vDitConfig::from_json(io::JsonConfig::load(base() + "/config.json"));
  EXPECT_EQ(cfg.dim, 64);
  for (int i = 1; i <= 4; ++i) {
    char name[80];
    std::snprintf(name, sizeof name, "/diffusion_pytorch_model-%05d-of-00004.safetensors", i);
    EXPECT_TRUE(std::filesystem::exists(base() + name)) << name;
  }
  expect_layout(base(), models::s2v_dit_tensor_specs(cfg));  // the directory resolves to the index
}

TEST_F(MkCheckpoint, VaeAndUmt5PthFiles) {
  expect_layout(base() + "/Wan2.1_VAE.pth", models::wan_vae_tensor_specs(models::WanVaeConfig{8}));
  models::Umt5Config t5;
  t5.vocab = 768, t5.dim = 32, t5.dim_attn = 32, t5.dim_ffn = 64, t5.num_heads = 4, t5.num_layers = 2;
  expect_layout(base() + "/models_t5_umt5-xxl-enc-bf16.pth", models::umt5_tensor_specs(t5));
  auto w = io::WeightStore::open(base() + "/models_t5_umt5-xxl-enc-bf16.pth");
  EXPECT_EQ(w.get_unchecked("norm.weight").scalar_type(), at::kBFloat16);
}

TEST_F(MkCheckpoint, Wav2Vec2Directory) {
  const std::string d = base() + "/wav2vec2-large-xlsr-53-english";
  const auto cfg = models::Wav2Vec2Config::from_json(io::JsonConfig::load(d + "/config.json"));
  EXPECT_EQ(cfg.num_hidden_layers + 1, models::kAudioHiddenStates);
  EXPECT_EQ(io::JsonConfig::load(d + "/preprocessor_config.json").get_int("sampling_rate"), 16000);
  EXPECT_EQ(io::JsonConfig::load(d + "/vocab.json").keys().size(), static_cast<size_t>(cfg.vocab_size));
  expect_layout(d + "/model.safetensors", models::wav2vec2_tensor_specs(cfg));
}

TEST_F(MkCheckpoint, LoraTargetsEveryAdaptedLinear) {
  const auto cfg = models::S2vDitConfig::from_json(io::JsonConfig::load(base() + "/config.json"));
  const std::string lora = (dir_->path() / "LiveAvatar" / "liveavatar.safetensors").string();
  expect_layout(lora, models::lora_tensor_specs(cfg, 4));
  // 10 adapted linears per block + 4 per injector, two tensors each (896 at full size)
  EXPECT_EQ(models::lora_tensor_specs(cfg, 4).size(), 2u * (10 * 3 + 4 * 2));
}

TEST_F(MkCheckpoint, TokenizerEncodesWithEos) {
  const std::string d = base() + "/google/umt5-xxl";
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load(d + "/spiece.model").ok());
  EXPECT_EQ(sp.pad_id(), 0);
  EXPECT_EQ(sp.eos_id(), 1);
  EXPECT_EQ(sp.unk_id(), 2);
  EXPECT_LE(sp.GetPieceSize(), 768);
  std::vector<int> ids;
  ASSERT_TRUE(sp.Encode("A blacksmith talks. 一位女士 😀", &ids).ok());
  EXPECT_GT(ids.size(), 5u);
  for (int id : ids) EXPECT_NE(id, sp.unk_id()) << "byte fallback covers every character";
  EXPECT_EQ(io::JsonConfig::load(d + "/special_tokens_map.json").get_string("eos_token"), "</s>");
  EXPECT_TRUE(std::filesystem::exists(d + "/tokenizer_config.json"));
}

TEST_F(MkCheckpoint, SameSeedSameBytesOtherSeedDiffers) {
  test::TempDir again, other;
  ASSERT_EQ(run_tool("--scale tiny --seed 7 --out " + again.path().string()), 0);
  ASSERT_EQ(run_tool("--scale tiny --seed 8 --out " + other.path().string()), 0);
  for (const char* f : {"/Wan2.2-S2V-14B/Wan2.1_VAE.pth", "/Wan2.2-S2V-14B/diffusion_pytorch_model-00002-of-00004.safetensors",
                        "/LiveAvatar/liveavatar.safetensors", "/Wan2.2-S2V-14B/google/umt5-xxl/spiece.model"}) {
    const auto a = test::read_bytes(dir_->path().string() + f);
    EXPECT_EQ(a, test::read_bytes(again.path().string() + f)) << f;
    if (std::string(f).find("spiece") == std::string::npos) {  // the tokenizer does not depend on the seed
      EXPECT_NE(a, test::read_bytes(other.path().string() + f)) << f;
    }
  }
}

TEST_F(MkCheckpoint, PthFilesLoadInPyTorch) {
  LA_REQUIRE_TORCH_PYTHON(py);
  const std::string script =
      "import sys, torch\n"
      "for p in sys.argv[1:]:\n"
      "    sd = torch.load(p, weights_only=True, map_location='cpu')\n"
      "    assert len(sd) > 0 and all(torch.isfinite(t.float()).all() for t in sd.values()), p\n";
  test::TempDir tmp;
  test::write_bytes(tmp.file("check.py"), script);
  const std::string cmd = std::string(py) + " " + tmp.file("check.py") + " " + base() + "/Wan2.1_VAE.pth " +
                          base() + "/models_t5_umt5-xxl-enc-bf16.pth";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

// Runs the tool with `args`, returns its exit status and fills `output` with
// what it printed (stdout and stderr).
int run_tool_capturing(const std::string& args, std::string& output) {
  const char* tool = std::getenv("LA_MKCHECKPOINT");
  output.clear();
  FILE* p = popen((std::string(tool) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[1024];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(MkCheckpointCli, BadArgumentsExitWithUsage) {
  ASSERT_NE(std::getenv("LA_MKCHECKPOINT"), nullptr) << "LA_MKCHECKPOINT not set (meson sets it)";
  test::TempDir dir;
  const std::string out = (dir.path() / "x").string();
  const std::pair<std::string, std::string> cases[] = {
      {"--scale huge --out " + out, "unknown scale 'huge' (expected tiny, miniature or full)"},
      {"--seed", "--seed needs a value"},
      {"", "--out is required"},
      {"--out " + out + " --shards 0", "--shards must be 1..99"},
      {"--out " + out + " --dtype f64", "unknown dtype 'f64'"},
      {"--out " + out + " --dit-layers 0", "--dit-layers must be 1..1000, got 0"},
  };
  for (const auto& [args, message] : cases) {
    std::string output;
    EXPECT_EQ(run_tool_capturing(args, output), 2) << "la-mkcheckpoint " << args << ":\n" << output;
    EXPECT_NE(output.find("la-mkcheckpoint: " + message), std::string::npos) << args << ":\n" << output;
    EXPECT_NE(output.find("usage: la-mkcheckpoint --out DIR"), std::string::npos) << args << ":\n" << output;
  }
  EXPECT_FALSE(std::filesystem::exists(out)) << "a refused invocation wrote files";
  std::string help;
  EXPECT_EQ(run_tool_capturing("--help", help), 0);
  EXPECT_NE(help.find("usage: la-mkcheckpoint"), std::string::npos) << help;
}

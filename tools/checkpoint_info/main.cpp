// la-checkpoint-info: loads every file of a Wan2.2-S2V-14B + LiveAvatar
// checkpoint directory (the real download or la-mkcheckpoint's output),
// checks each against the model layouts and prints what it holds.
// Exit status 0 only if every file loads with exactly the expected keys.
#include <ATen/ATen.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sentencepiece_processor.h>
#include <set>
#include <string>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_config.h"
#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/models/lora_layout.h"
#include "engine/models/s2v_dit_layout.h"
#include "engine/models/wav2vec2_layout.h"

namespace fs = std::filesystem;
using namespace la;

namespace {

struct Report {
  int files_ok = 0;
  int files_bad = 0;
};

// Reads every key of `specs` with its shape and reports stray keys.
bool check(io::WeightStore& w, const std::vector<models::TensorSpec>& specs, std::string& problem) {
  int64_t params = 0;
  std::set<std::string> dtypes;
  for (const auto& s : specs) {
    const at::Tensor t = w.get(s.name, s.shape);
    params += t.numel();
    dtypes.insert(at::toString(t.scalar_type()));
  }
  std::string dt;
  for (const auto& d : dtypes) dt += (dt.empty() ? "" : ",") + d;
  std::printf("    %zu tensors, %.3f M parameters, %s\n", specs.size(), params / 1e6, dt.c_str());
  const auto unused = w.unused_keys();
  if (!unused.empty()) {
    problem = std::to_string(unused.size()) + " unexpected tensors, first: " + unused.front();
    return false;
  }
  return true;
}

template <typename Fn>
void section(Report& r, const std::string& title, const fs::path& path, Fn&& fn) {
  std::printf("%s: %s\n", title.c_str(), path.string().c_str());
  const auto t0 = std::chrono::steady_clock::now();
  std::string problem;
  bool ok = false;
  try {
    ok = fn(problem);
  } catch (const std::exception& e) {
    problem = e.what();
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (ok) {
    ++r.files_ok;
    std::printf("    ok (%.0f ms)\n", ms);
  } else {
    ++r.files_bad;
    std::printf("    FAILED: %s\n", problem.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* usage = "usage: la-checkpoint-info DIR   (DIR holds Wan2.2-S2V-14B/ and LiveAvatar/)\n";
  if (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    std::fputs(usage, stdout);
    return 0;
  }
  if (argc != 2) {
    std::fputs(usage, stderr);
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path base = root / "Wan2.2-S2V-14B";
  Report r;
  models::S2vDitConfig dit;
  section(r, "DiT", base, [&](std::string& p) {
    dit = models::S2vDitConfig::from_json(io::JsonConfig::load((base / "config.json").string()));
    std::printf("    dim %lld, %lld layers, %lld heads, ffn %lld, audio_dim %lld, text_dim %lld\n",
                (long long)dit.dim, (long long)dit.num_layers, (long long)dit.num_heads, (long long)dit.ffn_dim,
                (long long)dit.audio_dim, (long long)dit.text_dim);
    auto w = io::WeightStore::open(base.string());
    return check(w, models::s2v_dit_tensor_specs(dit), p);
  });
  section(r, "VAE", base / "Wan2.1_VAE.pth", [&](std::string& p) {
    auto w = io::WeightStore::open((base / "Wan2.1_VAE.pth").string());
    const auto cfg = models::infer_wan_vae_config(w);
    std::printf("    base dim %lld, z_dim %lld\n", (long long)cfg.dim, (long long)cfg.z_dim);
    return check(w, models::wan_vae_tensor_specs(cfg), p);
  });
  int64_t t5_vocab = 0;
  section(r, "umT5", base / "models_t5_umt5-xxl-enc-bf16.pth", [&](std::string& p) {
    auto w = io::WeightStore::open((base / "models_t5_umt5-xxl-enc-bf16.pth").string());
    const auto cfg = models::infer_umt5_config(w);
    t5_vocab = cfg.vocab;
    std::printf("    vocab %lld, dim %lld, %lld layers, %lld heads\n", (long long)cfg.vocab, (long long)cfg.dim,
                (long long)cfg.num_layers, (long long)cfg.num_heads);
    return check(w, models::umt5_tensor_specs(cfg), p);
  });
  const fs::path w2v = base / "wav2vec2-large-xlsr-53-english";
  section(r, "wav2vec2", w2v, [&](std::string& p) {
    const auto cfg = models::Wav2Vec2Config::from_json(io::JsonConfig::load((w2v / "config.json").string()));
    io::JsonConfig::load((w2v / "preprocessor_config.json").string());
    const fs::path st = w2v / "model.safetensors";
    auto w = io::WeightStore::open(fs::exists(st) ? st.string() : (w2v / "pytorch_model.bin").string());
    return check(w, models::wav2vec2_tensor_specs(cfg), p);
  });
  section(r, "tokenizer", base / "google" / "umt5-xxl" / "spiece.model", [&](std::string& p) {
    sentencepiece::SentencePieceProcessor sp;
    const auto status = sp.Load((base / "google" / "umt5-xxl" / "spiece.model").string());
    if (!status.ok()) {
      p = status.ToString();
      return false;
    }
    std::printf("    %d pieces, pad %d, eos %d, unk %d\n", sp.GetPieceSize(), sp.pad_id(), sp.eos_id(), sp.unk_id());
    if (t5_vocab > 0 && sp.GetPieceSize() > t5_vocab) {
      p = "more pieces than the umT5 vocabulary (" + std::to_string(t5_vocab) + ")";
      return false;
    }
    return true;
  });
  const fs::path lora = root / "LiveAvatar" / "liveavatar.safetensors";
  section(r, "LoRA", lora, [&](std::string& p) {
    auto w = io::WeightStore::open(lora.string());
    const int64_t rank = models::infer_lora_rank(w);
    std::printf("    rank %lld over %zu adapted linears\n", (long long)rank, models::lora_targets(dit).size());
    return check(w, models::lora_tensor_specs(dit, rank), p);
  });
  std::printf("%d files ok, %d failed\n", r.files_ok, r.files_bad);
  return r.files_bad == 0 ? 0 : 1;
}

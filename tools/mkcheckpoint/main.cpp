// la-mkcheckpoint: writes a checkpoint directory with the file names, key
// names and formats of the real Wan2.2-S2V-14B + LiveAvatar release, filled
// with seeded random weights, at a chosen scale.
#include <ATen/ATen.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "engine/io/checkpoint_error.h"
#include "engine/io/pth_writer.h"
#include "engine/io/safetensors_writer.h"
#include "engine/models/lora_layout.h"
#include "tools/common/args.h"
#include "tools/mkcheckpoint/random_weights.h"
#include "tools/mkcheckpoint/scales.h"
#include "tools/mkcheckpoint/tokenizer_files.h"

namespace fs = std::filesystem;
using la::io::NamedTensors;
using la::models::TensorSpec;

namespace {

struct Options {
  std::string scale = "tiny";
  std::string out;
  uint64_t seed = 42;
  std::string dtype;  // empty: f32 for tiny, bf16 for full
  int shards = 4;
  int dit_layers = 0;  // 0 (not given): the scale's
};

void usage(FILE* f) {
  std::fprintf(f,
      "usage: la-mkcheckpoint --out DIR [--scale tiny|miniature|full] [--seed N] [--dtype f32|bf16|f16] [--shards N]\n"
      "                       [--dit-layers N]\n"
      "Writes DIR/Wan2.2-S2V-14B/ and DIR/LiveAvatar/ in the layout of the real release with\n"
      "seeded random weights. tiny (default) runs on a CPU in seconds; full has the real 14B\n"
      "shapes (about 46 GB in bf16) for benchmarks; miniature is tiny with a wider DiT, the starting\n"
      "point of la-train-miniature. The umT5 file is always bf16, as its name says.\n"
      "--dit-layers N gives the DiT N transformer blocks (audio injectors after every 3rd and the\n"
      "last), e.g. to split a tiny DiT over more devices or to benchmark a few full-width blocks.\n");
}

Options parse(int argc, char** argv) {
  Options o;
  la::tools::Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--scale") o.scale = args.value();
    else if (a == "--out") o.out = args.value();
    else if (a == "--seed") o.seed = args.uint64_value();
    else if (a == "--dtype") o.dtype = args.value();
    else if (a == "--shards") o.shards = args.int_value();
    else if (a == "--dit-layers") {
      o.dit_layers = args.int_value();
      if (o.dit_layers < 1 || o.dit_layers > 1000)
        throw la::tools::UsageError("--dit-layers must be 1..1000, got " + std::to_string(o.dit_layers));
    }
    else args.unknown();
  }
  if (o.out.empty()) throw la::tools::UsageError("--out is required");
  if (o.shards < 1 || o.shards > 99) throw la::tools::UsageError("--shards must be 1..99");
  if (o.dtype.empty()) o.dtype = o.scale == "full" ? "bf16" : "f32";
  return o;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

NamedTensors generate(const std::vector<TensorSpec>& specs, uint64_t seed, at::ScalarType dtype) {
  NamedTensors out;
  for (const auto& s : specs) out.emplace_back(s.name, la::tools::random_tensor(s, seed, dtype));
  return out;
}

uint64_t bytes_of(const TensorSpec& s, at::ScalarType dtype) {
  return static_cast<uint64_t>(la::models::numel(s)) * at::elementSize(dtype);
}

// The DiT as <shards> safetensors files of about equal size plus the index,
// named like the release (diffusion_pytorch_model-00001-of-00004.safetensors).
void write_dit(const fs::path& dir, const la::tools::Scale& sc, const Options& o, at::ScalarType dtype) {
  write_text(dir / "config.json", sc.dit.to_json());
  const auto specs = la::models::s2v_dit_tensor_specs(sc.dit);
  uint64_t total = 0;
  for (const auto& s : specs) total += bytes_of(s, dtype);
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  size_t next = 0;
  uint64_t written = 0;
  for (int shard = 1; shard <= o.shards; ++shard) {
    char name[96];
    std::snprintf(name, sizeof name, "diffusion_pytorch_model-%05d-of-%05d.safetensors", shard, o.shards);
    const uint64_t target = total * shard / o.shards;
    std::vector<TensorSpec> part;
    while (next < specs.size() && (written < target || shard == o.shards)) {
      written += bytes_of(specs[next], dtype);
      weight_map[specs[next].name] = name;
      part.push_back(specs[next++]);
    }
    la::io::write_safetensors((dir / name).string(), generate(part, o.seed, dtype), {{"format", "pt"}});
  }
  const nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_text(dir / "diffusion_pytorch_model.safetensors.index.json", index.dump(2) + "\n");
}

void write_wav2vec2(const fs::path& dir, const la::tools::Scale& sc, const Options& o, at::ScalarType dtype) {
  fs::create_directories(dir);
  write_text(dir / "config.json", sc.wav2vec2.to_json());
  const nlohmann::ordered_json pre = {
      {"do_normalize", true}, {"feature_extractor_type", "Wav2Vec2FeatureExtractor"},
      {"feature_size", 1}, {"padding_side", "right"}, {"padding_value", 0.0},
      {"return_attention_mask", true}, {"sampling_rate", 16000}};
  write_text(dir / "preprocessor_config.json", pre.dump(2) + "\n");
  // A CTC character vocabulary of vocab_size entries, as the English fine-tune has.
  nlohmann::ordered_json vocab = {{"<pad>", 0}, {"<s>", 1}, {"</s>", 2}, {"<unk>", 3}, {"|", 4}};
  const char* letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ'";
  for (int64_t i = 5; i < sc.wav2vec2.vocab_size; ++i)
    vocab[i - 5 < 27 ? std::string(1, letters[i - 5]) : "<extra_" + std::to_string(i) + ">"] = i;
  write_text(dir / "vocab.json", vocab.dump(2) + "\n");
  la::io::write_safetensors((dir / "model.safetensors").string(),
                            generate(la::models::wav2vec2_tensor_specs(sc.wav2vec2), o.seed, dtype),
                            {{"format", "pt"}});
}

void run(const Options& o) {
  auto sc = la::tools::scale_by_name(o.scale);
  if (o.dit_layers > 0) {
    sc.dit.num_layers = o.dit_layers;
    sc.dit.audio_inject_layers.clear();
    for (int i = 0; i < o.dit_layers; i += 3) sc.dit.audio_inject_layers.push_back(i);
    if (sc.dit.audio_inject_layers.back() != o.dit_layers - 1) sc.dit.audio_inject_layers.push_back(o.dit_layers - 1);
  }
  const auto dtype = la::tools::dtype_by_name(o.dtype);
  const fs::path base = fs::path(o.out) / "Wan2.2-S2V-14B";
  const fs::path lora_dir = fs::path(o.out) / "LiveAvatar";
  fs::create_directories(base / "google" / "umt5-xxl");
  fs::create_directories(lora_dir);
  const auto t0 = std::chrono::steady_clock::now();

  write_dit(base, sc, o, dtype);
  la::io::write_pth_tensors((base / "Wan2.1_VAE.pth").string(),
                            generate(la::models::wan_vae_tensor_specs(sc.vae), o.seed, dtype));
  la::io::write_pth_tensors((base / "models_t5_umt5-xxl-enc-bf16.pth").string(),
                            generate(la::models::umt5_tensor_specs(sc.t5), o.seed, at::kBFloat16));
  const int pieces = la::tools::write_tokenizer_dir((base / "google" / "umt5-xxl").string(),
                                                    sc.tokenizer_pieces, sc.dit.text_len);
  if (pieces > sc.t5.vocab)
    throw std::runtime_error("tokenizer has " + std::to_string(pieces) + " pieces, more than the umT5 vocab " +
                             std::to_string(sc.t5.vocab));
  write_wav2vec2(base / "wav2vec2-large-xlsr-53-english", sc, o, dtype);
  la::io::write_safetensors((lora_dir / "liveavatar.safetensors").string(),
                            generate(la::models::lora_tensor_specs(sc.dit, sc.lora_rank), o.seed, dtype),
                            {{"format", "pt"}, {"lora_alpha", std::to_string(sc.lora_alpha)},
                             {"r", std::to_string(sc.lora_rank)}});

  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s checkpoint (seed %llu, %s, %d tokenizer pieces) to %s in %.1f s\n", sc.name.c_str(),
              static_cast<unsigned long long>(o.seed), o.dtype.c_str(), pieces, o.out.c_str(), secs);
}

}  // namespace

int main(int argc, char** argv) {
  return la::tools::run_tool("la-mkcheckpoint", argc, argv, usage, [&] {
    run(parse(argc, argv));
    return 0;
  });
}

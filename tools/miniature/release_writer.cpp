#include "tools/miniature/release_writer.h"

#include <ATen/ATen.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/io/pth_writer.h"
#include "engine/io/safetensors_writer.h"
#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/models/s2v_dit/lora_merge.h"
#include "engine/models/wan_vae_layout.h"

namespace fs = std::filesystem;

namespace la::miniature {
namespace {

io::NamedTensors named(const std::map<std::string, at::Tensor>& m) {
  io::NamedTensors out;
  for (const auto& [k, t] : m) out.emplace_back(k, t.detach().contiguous());
  return out;
}

}  // namespace

void write_release(const std::string& init_dir, const std::string& out_dir,
                   const std::map<std::string, at::Tensor>& vae, const std::map<std::string, at::Tensor>& dit,
                   const std::string& notes_json) {
  const fs::path out(out_dir), base = out / "Wan2.2-S2V-14B";
  for (const char* part : {"Wan2.2-S2V-14B", "LiveAvatar"}) {
    fs::create_directories(out / part);
    fs::copy(fs::path(init_dir) / part, out / part, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }

  // The VAE in the order of its layout, as the release's .pth.
  io::NamedTensors vae_tensors;
  for (const auto& spec : models::wan_vae_tensor_specs(models::infer_wan_vae_config([&] {
         io::WeightStore s;
         s.add_tensors("trained VAE", vae);
         return s;
       }())))
    vae_tensors.emplace_back(spec.name, vae.at(spec.name).detach().contiguous());
  io::write_pth_tensors((base / "Wan2.1_VAE.pth").string(), vae_tensors);

  // The DiT into the shards its index names.
  std::ifstream index_file(base / "diffusion_pytorch_model.safetensors.index.json");
  const nlohmann::json index = nlohmann::json::parse(index_file);
  std::map<std::string, std::map<std::string, at::Tensor>> shards;
  for (const auto& [key, file] : index.at("weight_map").items()) shards[file.get<std::string>()][key] = dit.at(key);
  for (const auto& [file, tensors] : shards)
    io::write_safetensors((base / file).string(), named(tensors), {{"format", "pt"}});

  // The LoRA with B = 0.
  const fs::path lora = out / "LiveAvatar" / "liveavatar.safetensors";
  const double alpha = models::lora_alpha(lora.string());
  auto store = io::WeightStore::open(lora.string());
  const int64_t rank = models::infer_lora_rank(store);
  std::map<std::string, at::Tensor> adapter;
  for (const auto& key : store.keys()) {
    const at::Tensor t = store.get_unchecked(key);
    adapter[key] = key.find("lora_B") != std::string::npos ? at::zeros_like(t) : t.clone();
  }
  io::write_safetensors(lora.string(), named(adapter),
                        {{"format", "pt"}, {"lora_alpha", std::to_string(alpha)}, {"r", std::to_string(rank)}});

  std::ofstream notes(out / "miniature.json");
  notes << notes_json << "\n";
  if (!notes) throw std::runtime_error("cannot write " + (out / "miniature.json").string());
}

}  // namespace la::miniature

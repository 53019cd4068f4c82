#include "engine/models/s2v_dit/lora_merge.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "engine/io/checkpoint_error.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/tensor_view.h"
#include "engine/io/weight_store.h"

namespace la::models {
namespace {

struct Adapter {
  at::Tensor a, b;
  std::string a_key, b_key;
};

bool strip_suffix(std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0) return false;
  s.resize(s.size() - suffix.size());
  return true;
}

}  // namespace

double lora_alpha(const std::string& lora_path) {
  const io::SafetensorsFile f(lora_path);
  const auto it = f.metadata().find("lora_alpha");
  if (it == f.metadata().end()) return 64.0;
  try {
    return std::stod(it->second);
  } catch (const std::exception&) {
    throw io::CheckpointError(lora_path, "__metadata__ lora_alpha '" + it->second + "' is not a number");
  }
}

LoraMergeReport merge_lora(std::map<std::string, at::Tensor>& base, io::WeightStore& lora, double alpha,
                           const std::function<bool(const std::string&)>& elsewhere) {
  auto held_elsewhere = [&](const std::string& name) { return elsewhere && !base.count(name) && elsewhere(name); };
  c10::InferenceMode inference;
  const std::string prefix = "base_model.model.";
  std::map<std::string, Adapter> adapters;
  LoraMergeReport report;
  for (const auto& key : lora.keys()) {
    std::string name = key.rfind(prefix, 0) == 0 ? key.substr(prefix.size()) : key;
    const at::Tensor t = lora.get_unchecked(key);
    std::string module = name;
    const bool is_a = strip_suffix(module, ".lora_A.default.weight") || strip_suffix(module, ".lora_A.weight");
    const bool is_b = !is_a && (strip_suffix(module, ".lora_B.default.weight") || strip_suffix(module, ".lora_B.weight"));
    if (is_a) adapters[module].a = t, adapters[module].a_key = key;
    else if (is_b) adapters[module].b = t, adapters[module].b_key = key;
    else if (held_elsewhere(name)) ++report.elsewhere;
    else {
      const auto it = base.find(name);
      if (it == base.end() || it->second.sizes() != t.sizes())
        throw io::CheckpointError(lora.file_of(key), key,
                                  it == base.end() ? "matches no tensor of the DiT"
                                                   : "has shape " + io::shape_string(t.sizes()) + ", the DiT's " +
                                                         name + " is " + io::shape_string(it->second.sizes()));
      it->second = t.to(it->second.device(), it->second.scalar_type());
      ++report.replaced_tensors;
    }
  }
  for (const auto& [module, ad] : adapters) {
    const std::string& any_key = ad.a.defined() ? ad.a_key : ad.b_key;
    if (!ad.a.defined() || !ad.b.defined())
      throw io::CheckpointError(lora.file_of(any_key), any_key, "has no lora_" + std::string(ad.a.defined() ? "B" : "A") + " partner");
    if (held_elsewhere(module + ".weight")) {
      ++report.elsewhere;
      continue;
    }
    const auto it = base.find(module + ".weight");
    if (it == base.end()) throw io::CheckpointError(lora.file_of(any_key), any_key, "adapts " + module + ", which the DiT does not have");
    const at::Tensor& w = it->second;
    if (ad.a.dim() != 2 || ad.b.dim() != 2 || w.dim() != 2 || ad.a.size(0) != ad.b.size(1) ||
        ad.a.size(1) != w.size(1) || ad.b.size(0) != w.size(0))
      throw io::CheckpointError(lora.file_of(any_key), any_key,
                                "A " + io::shape_string(ad.a.sizes()) + " and B " + io::shape_string(ad.b.sizes()) +
                                    " do not fit " + module + ".weight " + io::shape_string(w.sizes()));
    const int64_t rank = ad.a.size(0);
    if (report.rank != 0 && report.rank != rank)
      throw io::CheckpointError(lora.file_of(any_key), any_key, "has rank " + std::to_string(rank) + ", others " + std::to_string(report.rank));
    report.rank = rank;
    report.scale = alpha / static_cast<double>(rank);
    const at::Tensor delta = at::matmul(ad.b.to(w.device(), at::kFloat), ad.a.to(w.device(), at::kFloat)) * report.scale;
    it->second = (w.to(at::kFloat) + delta).to(w.scalar_type());
    ++report.merged_modules;
  }
  if (report.merged_modules == 0 && report.replaced_tensors == 0 && report.elsewhere == 0)
    throw io::CheckpointError(lora.keys().empty() ? "(empty)" : lora.file_of(lora.keys().front()), "holds no LoRA tensor");
  return report;
}

}  // namespace la::models

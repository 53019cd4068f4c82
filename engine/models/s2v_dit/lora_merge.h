// Merging the LiveAvatar LoRA into the DiT's weights at load (the reference's
// peft merge_and_unload): W <- W + (alpha / rank) * B @ A, computed in fp32 and
// rounded back to W's dtype. Unlike the reference (which loads with
// strict=False and ignores names that do not match), every tensor of the LoRA
// file must find its base weight, or loading fails naming it.
#pragma once

#include <ATen/core/Tensor.h>
#include <functional>
#include <map>
#include <string>

namespace la::io { class WeightStore; }

namespace la::models {

struct LoraMergeReport {
  int64_t merged_modules = 0;  // linears that received a delta
  int64_t replaced_tensors = 0;  // non-LoRA tensors of the file that overwrote base weights
  int64_t elsewhere = 0;  // LoRA entries for tensors another part of the DiT holds
  int64_t rank = 0;
  double scale = 0;  // alpha / rank
};

// The alpha stored in a LoRA file's metadata ("lora_alpha"), else the
// release's 64 (liveavatar yaml: r 128, alpha 64).
double lora_alpha(const std::string& lora_path);

// `base` maps DiT keys to tensors and is updated in place (entries are
// replaced, never written through, so mapped checkpoint files stay intact).
// Key spellings accepted: "[base_model.model.]<module>.lora_{A,B}[.default].weight".
// Other keys of the file overwrite the base tensor of the same name and shape,
// as the reference's load_lora_weight_only=False does. When `base` is a part
// of the DiT (a pipeline stage), `elsewhere` names the tensors the other parts
// hold: entries for them are skipped, not errors. Throws io::CheckpointError.
LoraMergeReport merge_lora(std::map<std::string, at::Tensor>& base, io::WeightStore& lora, double alpha,
                           const std::function<bool(const std::string&)>& elsewhere = {});

}  // namespace la::models

// Key layout of the LiveAvatar LoRA (liveavatar.safetensors): rank-r adapters
// on every q/k/v/o of self- and cross-attention, ffn.0, ffn.2 and the audio
// injectors' q/k/v/o, named as peft saves a wrapped model:
// "base_model.model.<module>.lora_A.default.weight" [r, in] and
// "...lora_B.default.weight" [out, r]. The released file's exact spelling is
// unverified (reference dit.md §6.2); loaders also accept the names without
// the prefix and without ".default".
#pragma once

#include <string>
#include <vector>

#include "engine/models/s2v_dit_layout.h"
#include "engine/models/tensor_spec.h"

namespace la::models {

struct LoraTarget {
  std::string module;  // e.g. "blocks.3.ffn.0"
  int64_t in_features;
  int64_t out_features;
};

std::vector<LoraTarget> lora_targets(const S2vDitConfig& dit);
std::vector<TensorSpec> lora_tensor_specs(const S2vDitConfig& dit, int64_t rank);

}  // namespace la::models

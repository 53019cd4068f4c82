// Configurations of the files that ship without a config (Wan2.1_VAE.pth,
// models_t5_umt5-xxl-enc-bf16.pth, liveavatar.safetensors), read back from
// their tensor shapes. Errors name the file and the tensor that was expected.
#pragma once

#include "engine/io/weight_store.h"
#include "engine/models/umt5_layout.h"
#include "engine/models/wan_vae_layout.h"

namespace la::models {

// dim and z_dim from encoder.conv1 / conv2; the stage structure is the Wan 2.1 VAE's.
WanVaeConfig infer_wan_vae_config(const io::WeightStore& weights);
Umt5Config infer_umt5_config(const io::WeightStore& weights);
// The LoRA rank: the first dimension of any lora_A tensor.
int64_t infer_lora_rank(const io::WeightStore& weights);

}  // namespace la::models

// The model sizes la-mkcheckpoint can write. "full" has the real release's
// shapes; "tiny" keeps every structural rule (25 audio hidden states, wav2vec2
// strides, the VAE stage layout) at widths that run on a 2-core CPU in seconds.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

#include "engine/models/s2v_dit_layout.h"
#include "engine/models/umt5_layout.h"
#include "engine/models/wan_vae_layout.h"
#include "engine/models/wav2vec2_layout.h"

namespace la::tools {

struct Scale {
  std::string name;
  models::S2vDitConfig dit;
  models::WanVaeConfig vae;
  models::Umt5Config t5;
  models::Wav2Vec2Config wav2vec2;
  int64_t lora_rank;
  double lora_alpha;
  int tokenizer_pieces;  // SentencePiece vocabulary trained for the tokenizer
};

// Throws UsageError (tools/common/args.h) for an unknown name: names come from command lines.
Scale scale_by_name(const std::string& name);

// f32, bf16 or f16; UsageError for anything else.
at::ScalarType dtype_by_name(const std::string& name);
// The benchmarks' --dtype: `name`, or when it is empty the engine's choice for `device`
// (bf16 on CUDA, f32 on the CPU).
at::ScalarType dtype_for(const std::string& name, const at::Device& device);

}  // namespace la::tools

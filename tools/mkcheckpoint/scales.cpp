#include "tools/mkcheckpoint/scales.h"

#include "tools/common/args.h"

#include <stdexcept>

namespace la::tools {
namespace {

Scale full_scale() {
  Scale s;
  s.name = "full";  // every config default is the release's value
  s.lora_rank = 128;
  s.lora_alpha = 64.0;
  s.tokenizer_pieces = 2000;  // the real tokenizer has 256000 pieces; training those needs a real corpus
  return s;
}

Scale tiny_scale() {
  Scale s;
  s.name = "tiny";
  auto& d = s.dit;
  d.dim = 64;
  d.ffn_dim = 128;
  d.num_heads = 4;
  d.num_layers = 3;
  d.audio_inject_layers = {0, 2};
  d.freq_dim = 32;
  d.text_dim = 32;   // = t5.dim
  d.text_len = 32;
  d.audio_dim = 32;  // = wav2vec2.hidden_size
  s.vae.dim = 8;
  auto& t = s.t5;
  t.vocab = 768;
  t.dim = 32;
  t.dim_attn = 32;
  t.dim_ffn = 64;
  t.num_heads = 4;
  t.num_layers = 2;
  auto& w = s.wav2vec2;  // 24 layers kept: the DiT consumes all 25 hidden states
  w.hidden_size = 32;
  w.num_attention_heads = 4;
  w.intermediate_size = 64;
  w.conv_dim = {32, 32, 32, 32, 32, 32, 32};
  s.lora_rank = 4;
  s.lora_alpha = 2.0;  // alpha/rank = 0.5 as in the release
  s.tokenizer_pieces = 700;
  return s;
}

// The miniature's starting point (docs/miniature.md): tiny, with a DiT wide
// enough that a token (a 2x2 patch of 16 latent channels, 64 values) is not
// squeezed through 64 dimensions, and one more block.
Scale miniature_scale() {
  Scale s = tiny_scale();
  s.name = "miniature";
  s.dit.dim = 128;
  s.dit.ffn_dim = 256;
  s.dit.num_layers = 4;
  s.dit.audio_inject_layers = {0, 3};
  return s;
}

}  // namespace

Scale scale_by_name(const std::string& name) {
  if (name == "tiny") return tiny_scale();
  if (name == "full") return full_scale();
  if (name == "miniature") return miniature_scale();
  throw la::tools::UsageError("unknown scale '" + name + "' (expected tiny, miniature or full)");
}

at::ScalarType dtype_by_name(const std::string& name) {
  if (name == "f32") return at::kFloat;
  if (name == "bf16") return at::kBFloat16;
  if (name == "f16") return at::kHalf;
  throw la::tools::UsageError("unknown dtype '" + name + "' (expected f32, bf16 or f16)");
}

at::ScalarType dtype_for(const std::string& name, const at::Device& device) {
  if (name.empty()) return device.is_cuda() ? at::kBFloat16 : at::kFloat;
  return dtype_by_name(name);
}

}  // namespace la::tools

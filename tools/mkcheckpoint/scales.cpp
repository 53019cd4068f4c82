#include "tools/mkcheckpoint/scales.h"

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

}  // namespace

Scale scale_by_name(const std::string& name) {
  if (name == "tiny") return tiny_scale();
  if (name == "full") return full_scale();
  throw std::invalid_argument("unknown scale '" + name + "' (expected tiny or full)");
}

}  // namespace la::tools

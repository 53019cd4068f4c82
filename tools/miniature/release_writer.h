// Writes the trained miniature in the release layout: a copy of the
// checkpoint it started from (la-mkcheckpoint's tiny one: umT5, tokenizer,
// wav2vec2 stay at their seeded weights), with the trained VAE and DiT written
// over its files and the LoRA's B matrices zero.
#pragma once

#include <ATen/core/Tensor.h>
#include <map>
#include <string>

namespace la::miniature {

// The LoRA: the miniature's learning is in the base weights, so its adapter
// is the identity (B = 0; merging it changes no weight), kept because the
// elements load the release layout unchanged.
void write_release(const std::string& init_dir, const std::string& out_dir,
                   const std::map<std::string, at::Tensor>& vae, const std::map<std::string, at::Tensor>& dit,
                   const std::string& notes_json);

}  // namespace la::miniature

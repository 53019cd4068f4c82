#include "tools/bench/dit_flops.h"

namespace la::tools {

double dit_forward_flops(const models::S2vDitConfig& c, int64_t tokens, int64_t self_keys) {
  const double l = static_cast<double>(tokens), d = static_cast<double>(c.dim);
  const double per_layer = 8 * l * d * d                                   // self q, k, v, o
                           + 4 * l * static_cast<double>(self_keys) * d    // self-attention core
                           + 4 * l * d * d                                 // cross q, o
                           + 4 * l * static_cast<double>(c.text_len) * d   // cross-attention core
                           + 4 * l * d * static_cast<double>(c.ffn_dim);   // FFN
  const double per_injector = 4 * l * d * d;  // q, o (audio K/V and AdaLN are per frame: small)
  return static_cast<double>(c.num_layers) * per_layer +
         static_cast<double>(c.audio_inject_layers.size()) * per_injector + 2 * l * d * 4 * c.out_dim;
}

}  // namespace la::tools

// Matmul FLOPs of one S2V DiT forward (2·M·N·K per GEMM, 4·Lq·Lk·D per
// attention core; elementwise work ignored), as docs/dit.md §FLOPs counts them.
#pragma once

#include <cstdint>

#include "engine/models/s2v_dit_layout.h"

namespace la::tools {

// `tokens` noisy tokens attending to `self_keys` keys (history + sink) and the
// text_len text keys; cross-attention K/V are per prompt and not counted.
double dit_forward_flops(const models::S2vDitConfig& cfg, int64_t tokens, int64_t self_keys);

}  // namespace la::tools

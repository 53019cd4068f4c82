// Seeded random tensors for a TensorSpec. Each tensor's stream depends only on
// (seed, name), so a checkpoint is identical whatever order or sharding writes it.
#pragma once

#include <ATen/core/Tensor.h>
#include <cstdint>

#include "engine/models/tensor_spec.h"

namespace la::tools {

at::Tensor random_tensor(const models::TensorSpec& spec, uint64_t seed, at::ScalarType dtype);

}  // namespace la::tools

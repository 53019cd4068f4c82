// Writes at::Tensors to a .safetensors file (any device/layout; copied to
// contiguous CPU memory first).
#pragma once

#include <ATen/core/Tensor.h>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace la::io {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace la::io

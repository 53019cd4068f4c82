// Writes at::Tensors as a torch.save zip checkpoint (an OrderedDict state
// dict, one storage per tensor) that torch.load(weights_only=True) reads.
#pragma once

#include <string>

#include "engine/io/safetensors_writer.h"  // NamedTensors

namespace la::io {

void write_pth_tensors(const std::string& path, const NamedTensors& tensors);

}  // namespace la::io

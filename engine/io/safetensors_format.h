// Writes the safetensors format from raw bytes (no ATen), so the writer and
// the parser can be round-tripped under sanitizers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/io/dtype.h"

namespace la::io {

struct RawTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // contiguous, little-endian, dtype_size * numel bytes
};

// Writes `path` atomically (temporary file + rename). Tensors are stored in the
// given order; the header is padded with spaces to a multiple of 8 bytes so
// every tensor's data is 8-byte aligned in a mapping. Throws CheckpointError.
void write_safetensors_raw(const std::string& path, const std::vector<RawTensor>& tensors,
                           const std::map<std::string, std::string>& metadata = {});

}  // namespace la::io

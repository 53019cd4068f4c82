// Parser of the safetensors header: 8-byte little-endian length, a JSON object
// of {name: {dtype, shape, data_offsets}} plus optional "__metadata__".
// The bytes are untrusted: every length, offset and shape is bounded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/io/dtype.h"

namespace la::io {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // absolute byte offset of the data in the file
  uint64_t end = 0;    // one past the last byte
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in data-offset order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + header length
};

// The format's own reference implementation refuses headers above 100 MB.
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;
constexpr size_t kMaxTensorRank = 16;

// Throws CheckpointError naming `file` (and the tensor) on any violation.
SafetensorsHeader parse_safetensors_header(const uint8_t* data, uint64_t file_size,
                                           const std::string& file);

}  // namespace la::io

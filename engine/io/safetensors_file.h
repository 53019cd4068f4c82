// One .safetensors file, memory-mapped; tensors are zero-copy views into it.
#pragma once

#include <ATen/core/Tensor.h>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/mapped_file.h"
#include "engine/io/safetensors_header.h"

namespace la::io {

class SafetensorsFile {
 public:
  // Maps and validates the file. Throws CheckpointError.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const std::vector<SafetensorsEntry>& entries() const { return header_.entries; }

  // Every tensor, keyed by name, as CPU tensors over the mapping.
  std::map<std::string, at::Tensor> tensors() const;

 private:
  std::shared_ptr<const MappedFile> file_;
  SafetensorsHeader header_;
};

}  // namespace la::io

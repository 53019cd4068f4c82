// A torch.save zip checkpoint (.pth / pytorch_model.bin), memory-mapped and
// parsed without Python; tensors are zero-copy views into the mapping.
#pragma once

#include <ATen/core/Tensor.h>
#include <map>
#include <memory>
#include <string>

#include "engine/io/mapped_file.h"

namespace la::io {

class PthFile {
 public:
  // Maps and validates the archive and its pickle. Throws CheckpointError.
  explicit PthFile(const std::string& path);
  ~PthFile();

  const std::string& path() const { return file_->path(); }
  std::map<std::string, at::Tensor> tensors() const;

 private:
  struct Parsed;
  std::shared_ptr<const MappedFile> file_;
  std::unique_ptr<Parsed> parsed_;
};

}  // namespace la::io

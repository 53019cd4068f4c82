// torch.save zip checkpoints without ATen: parsing untrusted bytes into tensor
// descriptions plus the file spans of their storages, and writing the layout
// torch 2.11's torch.save produces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "engine/io/dtype.h"
#include "engine/io/pickle_state_dict.h"
#include "engine/io/zip_archive.h"

namespace la::io {

struct PthContents {
  std::string prefix;                  // the archive's top directory ("model" for model.pth)
  std::vector<PickledTensor> tensors;  // in pickle order; views may share a storage
  // Per storage key: where its bytes lie in the file. Each span's size equals
  // storage_numel * dtype_size of every tensor that uses it.
  std::map<std::string, ZipSpan> storages;
  std::vector<std::string> skipped;  // non-tensor leaves, not loaded
};

// Validates the zip, its byteorder record, the pickle and every storage record.
// `data` is the whole file. Throws CheckpointError naming `file`.
PthContents parse_pth(const uint8_t* data, size_t size, const std::string& file);

// One tensor to write: `data` points to its contiguous row-major bytes
// (product(shape) * dtype_size(dtype) of them), little-endian.
struct PthTensorBytes {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes a checkpoint that torch.load(path, weights_only=True) reads as an
// OrderedDict of these tensors, one storage each. The archive directory is the
// file name without its extension, as torch.save names it.
void write_pth(const std::string& path, const std::vector<PthTensorBytes>& tensors);

// The same into a stream; `file` names the destination in errors.
void write_pth(std::ostream& out, const std::string& archive_name, const std::vector<PthTensorBytes>& tensors,
               const std::string& file);

}  // namespace la::io

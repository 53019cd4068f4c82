// Bridges the ATen-free checkpoint parsers to at::Tensor: dtype mapping and
// zero-copy tensors over a memory-mapped file.
#pragma once

#include <ATen/core/Tensor.h>
#include <memory>
#include <vector>

#include "engine/io/dtype.h"
#include "engine/io/mapped_file.h"

namespace la::io {

at::ScalarType to_scalar_type(DType t);
// Throws std::invalid_argument for types no checkpoint format here stores.
DType from_scalar_type(at::ScalarType t);

// A CPU tensor viewing `file` bytes at `byte_offset`, keeping the mapping alive.
// Falls back to a copy when the address is not aligned to the element size
// (safetensors does not promise alignment). Bounds are the caller's job.
at::Tensor tensor_over_mapping(const std::shared_ptr<const MappedFile>& file, uint64_t byte_offset,
                               DType dtype, int64_t storage_numel, const std::vector<int64_t>& shape,
                               const std::vector<int64_t>& strides, int64_t storage_offset);

std::string shape_string(at::IntArrayRef shape);

}  // namespace la::io

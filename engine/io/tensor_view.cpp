#include "engine/io/tensor_view.h"

#include <ATen/Functions.h>
#include <stdexcept>

namespace la::io {

at::ScalarType to_scalar_type(DType t) {
  switch (t) {
    case DType::F64: return at::kDouble;
    case DType::F32: return at::kFloat;
    case DType::F16: return at::kHalf;
    case DType::BF16: return at::kBFloat16;
    case DType::F8_E4M3: return at::kFloat8_e4m3fn;
    case DType::F8_E5M2: return at::kFloat8_e5m2;
    case DType::I64: return at::kLong;
    case DType::I32: return at::kInt;
    case DType::I16: return at::kShort;
    case DType::I8: return at::kChar;
    case DType::U8: return at::kByte;
    case DType::BOOL: return at::kBool;
  }
  throw std::invalid_argument("unknown DType");
}

DType from_scalar_type(at::ScalarType t) {
  for (int i = 0; i <= static_cast<int>(DType::BOOL); ++i)
    if (to_scalar_type(static_cast<DType>(i)) == t) return static_cast<DType>(i);
  throw std::invalid_argument(std::string("no checkpoint dtype for ") + at::toString(t));
}

at::Tensor tensor_over_mapping(const std::shared_ptr<const MappedFile>& file, uint64_t byte_offset,
                               DType dtype, int64_t storage_numel, const std::vector<int64_t>& shape,
                               const std::vector<int64_t>& strides, int64_t storage_offset) {
  auto* base = const_cast<uint8_t*>(file->data()) + byte_offset;
  const auto options = at::TensorOptions().dtype(to_scalar_type(dtype)).device(at::kCPU);
  // The storage is viewed whole, so shared storages and strided views work.
  at::Tensor storage = at::from_blob(base, {storage_numel}, [keep = file](void*) {}, options);
  if (reinterpret_cast<uintptr_t>(base) % dtype_size(dtype) != 0) storage = storage.clone();
  return storage.as_strided(shape, strides, storage_offset);
}

std::string shape_string(at::IntArrayRef shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? "," : "") + std::to_string(shape[i]);
  return out + "]";
}

}  // namespace la::io

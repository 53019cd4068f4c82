#include "engine/io/dtype.h"

#include <array>

namespace la::io {
namespace {

struct DTypeInfo {
  DType type;
  size_t size;
  std::string_view safetensors;
  std::string_view torch_storage;
};

constexpr std::array<DTypeInfo, 12> kTable = {{
    {DType::F64, 8, "F64", "DoubleStorage"},
    {DType::F32, 4, "F32", "FloatStorage"},
    {DType::F16, 2, "F16", "HalfStorage"},
    {DType::BF16, 2, "BF16", "BFloat16Storage"},
    {DType::F8_E4M3, 1, "F8_E4M3", "Float8_e4m3fnStorage"},
    {DType::F8_E5M2, 1, "F8_E5M2", "Float8_e5m2Storage"},
    {DType::I64, 8, "I64", "LongStorage"},
    {DType::I32, 4, "I32", "IntStorage"},
    {DType::I16, 2, "I16", "ShortStorage"},
    {DType::I8, 1, "I8", "CharStorage"},
    {DType::U8, 1, "U8", "ByteStorage"},
    {DType::BOOL, 1, "BOOL", "BoolStorage"},
}};

const DTypeInfo& info(DType t) { return kTable[static_cast<size_t>(t)]; }

}  // namespace

size_t dtype_size(DType t) { return info(t).size; }
std::string_view dtype_safetensors_name(DType t) { return info(t).safetensors; }
std::string_view dtype_torch_storage_name(DType t) { return info(t).torch_storage; }

std::optional<DType> dtype_from_safetensors_name(std::string_view name) {
  for (const auto& e : kTable)
    if (e.safetensors == name) return e.type;
  return std::nullopt;
}

std::optional<DType> dtype_from_torch_storage_name(std::string_view name) {
  for (const auto& e : kTable)
    if (e.torch_storage == name) return e.type;
  return std::nullopt;
}

std::optional<uint64_t> checked_byte_size(DType t, const int64_t* dims, size_t ndim,
                                          uint64_t limit) {
  uint64_t total = dtype_size(t);
  for (size_t i = 0; i < ndim; ++i) {
    if (dims[i] < 0) return std::nullopt;
    const auto d = static_cast<uint64_t>(dims[i]);
    if (d != 0 && total > limit / d) return std::nullopt;
    total *= d;
  }
  if (total > limit) return std::nullopt;
  return total;
}

}  // namespace la::io

// Element types that appear in checkpoint files, independent of ATen so the
// parsers of untrusted bytes can be built and fuzzed without LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace la::io {

enum class DType : uint8_t {
  F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL,
};

// Bytes per element.
size_t dtype_size(DType t);

// The safetensors spelling ("F32", "BF16", "F8_E4M3", ...).
std::string_view dtype_safetensors_name(DType t);
std::optional<DType> dtype_from_safetensors_name(std::string_view name);

// The torch storage class that torch.save pickles for this dtype
// ("FloatStorage", "BFloat16Storage", ...).
std::string_view dtype_torch_storage_name(DType t);
std::optional<DType> dtype_from_torch_storage_name(std::string_view name);

// Product of dims times element size, or nullopt on a negative dim or overflow
// past `limit` bytes.
std::optional<uint64_t> checked_byte_size(DType t, const int64_t* dims, size_t ndim,
                                          uint64_t limit = UINT64_MAX);

}  // namespace la::io

// INTERNAL to engine/io (pickle_state_dict.cpp, pickle_writer.cpp): not a
// public API; use engine/io/pickle_state_dict.h. The restricted unpickler's
// values, what the flattener reads, and the few facts the reader and the
// writer of data.pkl share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/io/dtype.h"
#include "engine/io/pickle_state_dict.h"

namespace la::io::pickle_detail {

// Limits on names, shared by the reader and the writer.
inline constexpr size_t kMaxNameLength = 4096;
inline constexpr size_t kMaxStorageKeyLength = 256;

// ------------------------------------------------------------------ values --
// Everything the unpickler builds lives in one arena and refers to other
// values by index, so cyclic input (a list appended to itself) cannot leak or
// recurse: only dicts are ever walked, with a depth bound.

using Ref = uint32_t;

// clang-format off
enum class Kind : uint8_t {
  None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Global, PersId, Call,
};
// clang-format on

enum class Global : uint8_t {
  OrderedDict,
  RebuildTensorV2,
  RebuildTensorV3,
  RebuildParameter,
  RebuildParameterWithState,
  TypedStorage,    // torch.FloatStorage etc.; `dtype` says which
  UntypedStorage,  // torch.storage.UntypedStorage (dtype given to _rebuild_tensor_v3)
  DTypeObject,     // torch.float8_e4m3fn etc.; `dtype` says which
};

struct Value {
  Kind kind = Kind::None;
  Global global = Global::OrderedDict;  // Kind::Global, and the callee of Kind::Call
  DType dtype = DType::F32;             // for the storage and dtype globals
  bool ordered = false;                 // a Dict made by OrderedDict()
  int64_t i = 0;                        // Int and Bool
  std::string_view s;                   // Str and Bytes: points into the pickle
  std::vector<Ref> items;  // Tuple/List elements, Dict key/value pairs, PersId {pid}, Call {args}
};

// What the unpickler leaves behind: the arena and the object STOP returned.
// Str and Bytes values point into the pickle's bytes, which must outlive it.
struct Unpickled {
  std::vector<Value> values;
  Ref root = 0;
  uint64_t ops = 0;  // opcodes executed
  const Value& at(Ref r) const { return values[r]; }
};

// Runs the restricted unpickler over `data` (the bytes of data.pkl): only the
// opcodes and globals state dicts use, within fixed limits. Throws
// CheckpointError naming `file`.
Unpickled unpickle(const uint8_t* data, size_t size, const std::string& file);

// ---------------------------------------------------- shared with the writer --

struct TorchDTypeName {
  const char* name;
  DType dtype;
};
// The canonical names torch.dtype pickles itself as (its __reduce__).
// clang-format off
inline constexpr TorchDTypeName kTorchDTypes[] = {
    {"float64", DType::F64}, {"float32", DType::F32},       {"float16", DType::F16},
    {"bfloat16", DType::BF16}, {"float8_e4m3fn", DType::F8_E4M3}, {"float8_e5m2", DType::F8_E5M2},
    {"int64", DType::I64},   {"int32", DType::I32},         {"int16", DType::I16},
    {"int8", DType::I8},     {"uint8", DType::U8},          {"bool", DType::BOOL},
};
// clang-format on

// The checks every tensor view passes, whether read or about to be written
// (defined in pickle_state_dict.cpp). Throws CheckpointError naming `file`.
void validate_view(const PickledTensor& t, const std::string& file);

}  // namespace la::io::pickle_detail

// pickle_state_dict() of engine/io/pickle_state_dict.h: the data.pkl that
// torch.save writes for an OrderedDict of tensors.
#include "engine/io/pickle_state_dict.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine/io/checkpoint_error.h"
#include "engine/io/pickle_machine.h"
#include "engine/io/zip_archive.h"

namespace la::io {
namespace {

using pickle_detail::kMaxNameLength;
using pickle_detail::kMaxStorageKeyLength;
using pickle_detail::kTorchDTypes;
using pickle_detail::validate_view;

// torch.save serializes these dtypes through _rebuild_tensor_v3 and an
// UntypedStorage (torch.storage._new_dtypes()); the rest as typed storages.
bool uses_untyped_storage(DType t) { return t == DType::F8_E4M3 || t == DType::F8_E5M2; }

const char* torch_dtype_name(DType t) {
  for (const auto& d : kTorchDTypes)
    if (d.dtype == t) return d.name;
  return "?";
}

class Pickler {
 public:
  std::string out;

  void op(uint8_t c) { out.push_back(static_cast<char>(c)); }
  void le(uint64_t v, int bytes) {
    for (int k = 0; k < bytes; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
  }
  void put() {  // memoize the object just written, as the pickler does
    if (next_memo_ < 256) {
      op('q');
      le(next_memo_, 1);
    } else {
      op('r');
      le(next_memo_, 4);
    }
    ++next_memo_;
  }
  void get(uint32_t index) {
    if (index < 256) {
      op('h');
      le(index, 1);
    } else {
      op('j');
      le(index, 4);
    }
  }
  void global(const char* module, const char* name, std::optional<uint32_t>& memo) {
    if (memo) return get(*memo);
    op('c');
    out += module;
    out += '\n';
    out += name;
    out += '\n';
    memo = next_memo_;
    put();
  }
  // `shared` holds strings that are one Python object in torch.save (and so
  // are memo fetches the second time); other strings are always new objects.
  void str(const std::string& s, std::map<std::string, uint32_t>* shared = nullptr) {
    if (shared != nullptr) {
      const auto it = shared->find(s);
      if (it != shared->end()) return get(it->second);
      (*shared)[s] = next_memo_;
    }
    op('X');
    le(s.size(), 4);
    out += s;
    put();
  }
  void integer(int64_t v) {  // non-negative here
    if (v <= 0xFF) {
      op('K');
      le(static_cast<uint64_t>(v), 1);
    } else if (v <= 0xFFFF) {
      op('M');
      le(static_cast<uint64_t>(v), 2);
    } else if (v <= 0x7FFFFFFF) {
      op('J');
      le(static_cast<uint64_t>(v), 4);
    } else {  // LONG1: shortest little-endian two's complement
      size_t bytes = 1;
      while (bytes < 8 && (static_cast<uint64_t>(v) >> (8 * bytes - 1)) != 0) ++bytes;
      op(0x8a);
      le(bytes, 1);
      le(static_cast<uint64_t>(v), static_cast<int>(bytes));
    }
  }
  void int_tuple(const std::vector<int64_t>& v) {
    if (v.empty()) return op(')');  // the empty tuple is never memoized
    if (v.size() > 3) op('(');
    for (const int64_t x : v) integer(x);
    op(v.size() > 3 ? 't' : static_cast<uint8_t>(0x84 + v.size()));
    put();
  }
  void new_ordered_dict() {  // OrderedDict(): the memo fetch of its class after the first time
    global("collections", "OrderedDict", ordered_dict_);
    op(')');
    op('R');
    put();
  }
  void tensor(const PickledTensor& t);

 private:
  uint32_t next_memo_ = 0;
  std::optional<uint32_t> ordered_dict_, rebuild_v2_, rebuild_v3_, untyped_storage_;
  std::map<DType, std::optional<uint32_t>> storage_types_, dtypes_;
  std::map<std::string, uint32_t> storage_literal_, locations_, storage_keys_;
};

void Pickler::tensor(const PickledTensor& t) {
  const bool v3 = uses_untyped_storage(t.dtype);
  if (v3)
    global("torch._utils", "_rebuild_tensor_v3", rebuild_v3_);
  else
    global("torch._utils", "_rebuild_tensor_v2", rebuild_v2_);
  op('(');
  op('(');  // the persistent id of the storage
  str("storage", &storage_literal_);
  if (v3)
    global("torch.storage", "UntypedStorage", untyped_storage_);
  else
    global("torch", std::string(dtype_torch_storage_name(t.dtype)).c_str(), storage_types_[t.dtype]);
  str(t.storage_key, &storage_keys_);
  str("cpu", &locations_);
  integer(v3 ? t.storage_numel * static_cast<int64_t>(dtype_size(t.dtype)) : t.storage_numel);
  op('t');
  put();
  op('Q');
  integer(t.storage_offset);
  int_tuple(t.shape);
  int_tuple(t.strides);
  op(0x89);            // requires_grad=False
  new_ordered_dict();  // backward hooks
  if (v3) global("torch", torch_dtype_name(t.dtype), dtypes_[t.dtype]);
  op('t');
  put();
  op('R');
  put();
}

// Python decodes BINUNICODE strictly (surrogates aside), so names must be UTF-8.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t more = 0;                     // continuation bytes
    unsigned char lo = 0x80, hi = 0xBF;  // range of the first one (no overlongs, <= U+10FFFF)
    if (c < 0x80) {
      more = 0;
    } else if (c >= 0xC2 && c <= 0xDF) {
      more = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      more = 2;
      if (c == 0xE0) lo = 0xA0;
    } else if (c >= 0xF0 && c <= 0xF4) {
      more = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (more > s.size() - i - 1) return false;
    for (size_t k = 1; k <= more; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF)) return false;
    }
    i += more + 1;
  }
  return true;
}

}  // namespace

std::string pickle_state_dict(const std::vector<PickledTensor>& tensors) {
  const std::string file = "<pickle>";
  std::unordered_set<std::string> names;
  for (const auto& t : tensors) {
    if (!valid_utf8(t.name))
      throw CheckpointError(file, escape_for_message(t.name), "name is not valid UTF-8");
    if (t.name.size() > kMaxNameLength) throw CheckpointError(file, t.name, "name is too long");
    if (!names.insert(t.name).second) throw CheckpointError(file, t.name, "name occurs twice");
    if (t.storage_key.empty() || t.storage_key.size() > kMaxStorageKeyLength || !valid_utf8(t.storage_key))
      throw CheckpointError(file, t.name, "storage key is empty, too long or not UTF-8");
    validate_view(t, file);
  }
  Pickler p;
  p.op(0x80);  // PROTO 2
  p.op(2);
  p.new_ordered_dict();
  // Items go in batches of 1000 (MARK ... SETITEMS); a lone trailing item is
  // a plain SETITEM. This is CPython's batching, kept for byte equality.
  constexpr size_t kBatch = 1000;
  for (size_t start = 0; start < tensors.size(); start += kBatch) {
    const size_t end = std::min(tensors.size(), start + kBatch);
    if (end - start > 1) p.op('(');
    for (size_t k = start; k < end; ++k) {
      p.str(tensors[k].name);
      p.tensor(tensors[k]);
    }
    p.op(end - start > 1 ? 'u' : 's');
  }
  p.op('.');
  return std::move(p.out);
}

}  // namespace la::io

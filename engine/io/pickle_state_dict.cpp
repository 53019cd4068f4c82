#include "engine/io/pickle_state_dict.h"

#include <map>
#include <unordered_set>
#include <utility>

#include "engine/io/checkpoint_error.h"
#include "engine/io/pickle_machine.h"
#include "engine/io/zip_archive.h"

namespace la::io {
namespace pickle_detail {
namespace {

constexpr int kMaxDictDepth = 64;
constexpr size_t kMaxRank = 16;

int64_t checked_mul(int64_t a, int64_t b, bool& ok) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) ok = false;
  return r;
}
int64_t checked_add(int64_t a, int64_t b, bool& ok) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) ok = false;
  return r;
}

}  // namespace

// The checks every tensor view passes, whether read or about to be written.
void validate_view(const PickledTensor& t, const std::string& file) {
  auto fail = [&](const std::string& what) { throw CheckpointError(file, t.name, what); };
  if (t.shape.size() > kMaxRank)
    fail("rank " + std::to_string(t.shape.size()) + " exceeds " + std::to_string(kMaxRank));
  if (t.shape.size() != t.strides.size()) fail("shape and strides differ in length");
  if (t.storage_numel < 0 || !checked_byte_size(t.dtype, &t.storage_numel, 1, uint64_t{1} << 62))
    fail("storage of " + std::to_string(t.storage_numel) + " elements is too large");
  if (t.storage_offset < 0) fail("negative storage offset");
  bool ok = true;
  int64_t numel = 1;
  int64_t last = t.storage_offset;  // element index of the view's last element
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0 || t.strides[d] < 0) fail("negative size or stride in dimension " + std::to_string(d));
    numel = checked_mul(numel, t.shape[d], ok);
    if (t.shape[d] > 0) last = checked_add(last, checked_mul(t.shape[d] - 1, t.strides[d], ok), ok);
  }
  if (!ok) fail("shape and strides overflow 64-bit element indices");
  if (numel == 0 ? t.storage_offset > t.storage_numel : last >= t.storage_numel)
    fail("view (offset " + std::to_string(t.storage_offset) + ", last element " + std::to_string(last) +
         ") lies outside its storage of " + std::to_string(t.storage_numel) + " elements");
}

namespace {

class Flattener {
 public:
  Flattener(const Unpickled& u, const std::string& file, uint64_t visits, uint64_t name_bytes)
      : u_(u), file_(file), visit_budget_(visits), name_budget_(name_bytes) {}

  void walk(Ref dict, const std::string& prefix, int depth);
  PickledStateDict result;

 private:
  const Value& at(Ref r) const { return u_.at(r); }
  std::string key_text(Ref key, const std::string& prefix);
  PickledTensor tensor(Ref call, const std::string& name, bool allow_parameter) const;
  void check_shared_storage(const PickledTensor& t);

  const Unpickled& u_;
  const std::string& file_;
  uint64_t visit_budget_;
  uint64_t name_budget_;
  std::unordered_set<std::string> names_;
  struct StorageUse {
    DType dtype;
    int64_t numel;
  };
  std::map<std::string, StorageUse> storages_;
};

std::string Flattener::key_text(Ref key, const std::string& prefix) {
  const Value& k = at(key);
  std::string text;
  if (k.kind == Kind::Str)
    text = std::string(k.s);
  else if (k.kind == Kind::Int)
    text = std::to_string(k.i);  // optimizer state: {0: {...}}
  else
    throw CheckpointError(file_,
                          "a dict key under '" + escape_for_message(prefix) + "' is not a string or int");
  std::string name = prefix.empty() ? text : prefix + "." + text;
  if (name.size() > kMaxNameLength)
    throw CheckpointError(file_, "key '" + escape_for_message(name) + "' is longer than " +
                                     std::to_string(kMaxNameLength) + " bytes");
  // Memo fetches let a small pickle repeat long keys under shared dicts.
  if (name.size() > name_budget_)
    throw CheckpointError(file_, "flattened key names are implausibly long in total");
  name_budget_ -= name.size();
  return name;
}

void Flattener::walk(Ref dict, const std::string& prefix, int depth) {
  if (depth > kMaxDictDepth)
    throw CheckpointError(file_, "dicts nested deeper than " + std::to_string(kMaxDictDepth) +
                                     " levels under '" + escape_for_message(prefix) + "'");
  const size_t count = at(dict).items.size() / 2;
  for (size_t k = 0; k < count; ++k) {
    // Shared sub-dicts could otherwise multiply the work exponentially.
    if (visit_budget_-- == 0) throw CheckpointError(file_, "dict entries are shared too often to flatten");
    const Ref key = at(dict).items[2 * k];
    const Ref value = at(dict).items[2 * k + 1];
    std::string name = key_text(key, prefix);
    const Value& v = at(value);
    if (v.kind == Kind::Dict) {
      walk(value, name, depth + 1);
      continue;
    }
    if (!names_.insert(name).second) throw CheckpointError(file_, name, "name occurs twice");
    if (v.kind == Kind::Call) {
      PickledTensor t = tensor(value, name, true);
      check_shared_storage(t);
      result.tensors.push_back(std::move(t));
    } else {
      result.skipped.push_back(std::move(name));
    }
  }
}

PickledTensor Flattener::tensor(Ref call, const std::string& name, bool allow_parameter) const {
  auto fail = [&](const std::string& what) -> PickledTensor { throw CheckpointError(file_, name, what); };
  const Value& c = at(call);
  const std::vector<Ref>& args = at(c.items[0]).items;
  if (c.global == Global::RebuildParameter || c.global == Global::RebuildParameterWithState) {
    const size_t want = c.global == Global::RebuildParameter ? 3 : 4;
    if (!allow_parameter || args.size() != want || at(args[0]).kind != Kind::Call)
      return fail("malformed _rebuild_parameter call");
    return tensor(args[0], name, false);
  }
  const bool v3 = c.global == Global::RebuildTensorV3;
  if (!v3 && c.global != Global::RebuildTensorV2) return fail("is not built by a tensor rebuild function");
  if (args.size() != (v3 ? 7u : 6u) && args.size() != (v3 ? 8u : 7u))
    return fail("tensor rebuild call has " + std::to_string(args.size()) + " arguments");

  // args[0]: the storage, a persistent id ('storage', type, key, location, numel).
  const Value& storage = at(args[0]);
  if (storage.kind != Kind::PersId) return fail("tensor storage is not a persistent reference");
  const Value& pid = at(storage.items[0]);
  if (pid.kind != Kind::Tuple || pid.items.size() != 5) return fail("storage reference is not a 5-tuple");
  const Value& tag = at(pid.items[0]);
  const Value& type = at(pid.items[1]);
  const Value& key = at(pid.items[2]);
  const Value& location = at(pid.items[3]);
  const Value& numel = at(pid.items[4]);
  if (tag.kind != Kind::Str || tag.s != "storage")
    return fail("storage reference does not start with 'storage'");
  if (type.kind != Kind::Global ||
      (type.global != Global::TypedStorage && type.global != Global::UntypedStorage))
    return fail("storage reference has no storage type");
  if (key.kind != Kind::Str || key.s.empty() || key.s.size() > kMaxStorageKeyLength)
    return fail("storage key is not a short string");
  if (location.kind != Kind::Str) return fail("storage location is not a string");
  if (numel.kind != Kind::Int) return fail("storage size is not an integer");

  PickledTensor t;
  t.name = name;
  t.storage_key = std::string(key.s);
  t.storage_numel = numel.i;
  if (v3) {
    const Value& dt = at(args[6]);
    if (dt.kind != Kind::Global || dt.global != Global::DTypeObject)
      return fail("_rebuild_tensor_v3 has no dtype");
    t.dtype = dt.dtype;
    if (type.global == Global::UntypedStorage) {
      // An untyped storage counts bytes.
      const auto elem = static_cast<int64_t>(dtype_size(t.dtype));
      if (numel.i < 0 || numel.i % elem != 0)
        return fail("untyped storage size is not a whole number of elements");
      t.storage_numel = numel.i / elem;
    } else if (type.dtype != t.dtype) {
      return fail("storage type and dtype disagree");
    }
  } else {
    if (type.global != Global::TypedStorage) return fail("_rebuild_tensor_v2 with an untyped storage");
    t.dtype = type.dtype;
  }

  const Value& offset = at(args[1]);
  const Value& shape = at(args[2]);
  const Value& strides = at(args[3]);
  if (offset.kind != Kind::Int) return fail("storage offset is not an integer");
  t.storage_offset = offset.i;
  if (shape.kind != Kind::Tuple || strides.kind != Kind::Tuple)
    return fail("shape or strides is not a tuple");
  if (shape.items.size() > kMaxRank || strides.items.size() > kMaxRank)
    return fail("rank exceeds " + std::to_string(kMaxRank));
  for (const Ref r : shape.items) {
    if (at(r).kind != Kind::Int) return fail("shape holds a non-integer");
    t.shape.push_back(at(r).i);
  }
  for (const Ref r : strides.items) {
    if (at(r).kind != Kind::Int) return fail("strides hold a non-integer");
    t.strides.push_back(at(r).i);
  }
  if (at(args[4]).kind != Kind::Bool) return fail("requires_grad is not a bool");
  validate_view(t, file_);
  return t;
}

// torch.save refuses to write one storage under two dtypes; a file that does
// anyway, or disagrees on the storage's size, is malformed.
void Flattener::check_shared_storage(const PickledTensor& t) {
  const auto [it, inserted] = storages_.emplace(t.storage_key, StorageUse{t.dtype, t.storage_numel});
  if (!inserted && (it->second.dtype != t.dtype || it->second.numel != t.storage_numel))
    throw CheckpointError(file_, t.name,
                          "shares storage '" + escape_for_message(t.storage_key) +
                              "' with another tensor but disagrees on its dtype or size");
}

}  // namespace
}  // namespace pickle_detail

PickledStateDict unpickle_state_dict(const uint8_t* data, size_t size, const std::string& file) {
  using namespace pickle_detail;
  const Unpickled u = unpickle(data, size, file);
  if (u.at(u.root).kind != Kind::Dict) throw CheckpointError(file, "data.pkl does not hold a dict of tensors");
  Flattener f(u, file, u.ops + 4096, 16 * uint64_t{size} + (uint64_t{1} << 20));
  f.walk(u.root, "", 0);
  return std::move(f.result);
}

}  // namespace la::io

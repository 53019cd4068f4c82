#include "engine/io/pickle_state_dict.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "engine/io/checkpoint_error.h"
#include "engine/io/zip_archive.h"

namespace la::io {
namespace {

// Limits far above what any state dict needs (a 100k-tensor dict is ~3M
// opcodes) but low enough that hostile input cannot exhaust memory or stack.
constexpr uint64_t kMaxOps = uint64_t{1} << 24;
constexpr size_t kMaxStack = size_t{1} << 20;
constexpr size_t kMaxMarks = 1024;
constexpr int kMaxDictDepth = 64;
constexpr size_t kMaxRank = 16;
constexpr size_t kMaxNameLength = 4096;
constexpr size_t kMaxStorageKeyLength = 256;

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

struct TorchDTypeName {
  const char* name;
  DType dtype;
};
// The canonical names torch.dtype pickles itself as (its __reduce__).
// clang-format off
constexpr TorchDTypeName kTorchDTypes[] = {
    {"float64", DType::F64}, {"float32", DType::F32},       {"float16", DType::F16},
    {"bfloat16", DType::BF16}, {"float8_e4m3fn", DType::F8_E4M3}, {"float8_e5m2", DType::F8_E5M2},
    {"int64", DType::I64},   {"int32", DType::I32},         {"int16", DType::I16},
    {"int8", DType::I8},     {"uint8", DType::U8},          {"bool", DType::BOOL},
};
// clang-format on

// torch.save serializes these dtypes through _rebuild_tensor_v3 and an
// UntypedStorage (torch.storage._new_dtypes()); the rest as typed storages.
bool uses_untyped_storage(DType t) { return t == DType::F8_E4M3 || t == DType::F8_E5M2; }

const char* torch_dtype_name(DType t) {
  for (const auto& d : kTorchDTypes)
    if (d.dtype == t) return d.name;
  return "?";
}

// --------------------------------------------------------------- unpickler --

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& file) : p_(data), n_(size), file_(file) {}

  Ref run();
  const Value& at(Ref r) const { return values_[r]; }
  uint64_t ops() const { return ops_; }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw CheckpointError(file_, "data.pkl byte " + std::to_string(op_pos_) + ": " + what);
  }
  const uint8_t* take(uint64_t count) {
    if (count > n_ - pos_) fail("pickle ends in the middle of an opcode");
    const uint8_t* p = p_ + pos_;
    pos_ += count;
    return p;
  }
  uint64_t le(int bytes) {
    const uint8_t* b = take(static_cast<uint64_t>(bytes));
    uint64_t v = 0;
    for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | b[k];
    return v;
  }
  std::string_view text(uint64_t count) {
    return {reinterpret_cast<const char*>(take(count)), static_cast<size_t>(count)};
  }
  std::string_view line() {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (nl == nullptr) fail("unterminated GLOBAL name");
    const auto len = static_cast<uint64_t>(static_cast<const uint8_t*>(nl) - (p_ + pos_));
    const std::string_view s = text(len);
    ++pos_;
    return s;
  }

  Ref make(Value v) {
    values_.push_back(std::move(v));
    return static_cast<Ref>(values_.size() - 1);
  }
  Ref make_kind(Kind k) {
    Value v;
    v.kind = k;
    return make(std::move(v));
  }
  void push(Ref r) {
    if (stack_.size() >= kMaxStack) fail("pickle stack grows past " + std::to_string(kMaxStack));
    stack_.push_back(r);
  }
  Ref pop() {
    if (stack_.size() <= stack_floor()) fail("pickle stack underflow");
    const Ref r = stack_.back();
    stack_.pop_back();
    return r;
  }
  Ref& top() {
    if (stack_.size() <= stack_floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  size_t stack_floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) fail("opcode needs a MARK but there is none");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Value& container(Ref r, Kind want, const char* op) {
    if (values_[r].kind != want)
      fail(std::string(op) + " applied to something that is not a " + (want == Kind::Dict ? "dict" : "list"));
    return values_[r];
  }

  Ref global(std::string_view module, std::string_view name);
  Ref integer(int64_t v) {
    Value x;
    x.kind = Kind::Int;
    x.i = v;
    return make(std::move(x));
  }
  Ref long_bytes(uint64_t count);
  Ref binfloat() {  // the value is never used
    take(8);
    return make_kind(Kind::Float);
  }
  Ref string(Kind k, uint64_t count) {
    Value x;
    x.kind = k;
    x.s = text(count);
    return make(std::move(x));
  }
  Ref tuple(std::vector<Ref> items) {
    Value x;
    x.kind = Kind::Tuple;
    x.items = std::move(items);
    return make(std::move(x));
  }
  void reduce(bool newobj);
  void build();
  void memo_put(uint64_t index) {
    if (stack_.empty()) fail("memo store from an empty stack");
    memo_[index] = stack_.back();
  }
  void memo_get(uint64_t index) {
    const auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo fetch of unknown index " + std::to_string(index));
    push(it->second);
  }
  bool step();

  const uint8_t* p_;
  uint64_t n_;
  const std::string& file_;
  uint64_t pos_ = 0;
  uint64_t op_pos_ = 0;
  uint64_t ops_ = 0;
  std::vector<Value> values_;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
};

Ref Unpickler::run() {
  while (step()) {
  }
  if (stack_.size() != 1 || !marks_.empty())
    fail("STOP with " + std::to_string(stack_.size()) + " objects on the stack instead of one");
  return stack_.back();
}

Ref Unpickler::global(std::string_view module, std::string_view name) {
  Value v;
  v.kind = Kind::Global;
  bool ok = true;
  if (module == "collections" && name == "OrderedDict") {
    v.global = Global::OrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    v.global = Global::RebuildTensorV2;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v3") {
    v.global = Global::RebuildTensorV3;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    v.global = Global::RebuildParameter;
  } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
    v.global = Global::RebuildParameterWithState;
  } else if (module == "torch.storage" && name == "UntypedStorage") {
    v.global = Global::UntypedStorage;
  } else if (module == "torch") {
    ok = false;
    if (const auto t = dtype_from_torch_storage_name(name)) {
      v.global = Global::TypedStorage;
      v.dtype = *t;
      ok = true;
    }
    for (const auto& d : kTorchDTypes) {
      if (name == d.name) {
        v.global = Global::DTypeObject;
        v.dtype = d.dtype;
        ok = true;
      }
    }
  } else {
    ok = false;
  }
  if (!ok) {
    throw CheckpointError(file_, "pickle references the global '" + escape_for_message(module) + "." +
                                     escape_for_message(name) +
                                     "', which a state dict never contains; refusing to load");
  }
  return make(std::move(v));
}

// LONG1/LONG4: little-endian two's complement of any length.
Ref Unpickler::long_bytes(uint64_t count) {
  const uint8_t* b = take(count);
  if (count > 8) {
    Value v;
    v.kind = Kind::BigInt;
    return make(std::move(v));
  }
  uint64_t u = 0;
  for (uint64_t k = count; k-- > 0;) u = (u << 8) | b[k];
  if (count > 0 && count < 8 && (b[count - 1] & 0x80)) u |= ~uint64_t{0} << (8 * count);
  int64_t s;
  std::memcpy(&s, &u, sizeof s);
  return integer(s);
}

// Only allowlisted callables reach here; nothing is executed. OrderedDict()
// becomes an empty dict, a rebuild function a Call node decoded later.
void Unpickler::reduce(bool newobj) {
  const Ref args = pop();
  const Ref fn = pop();
  if (at(fn).kind != Kind::Global) fail(newobj ? "NEWOBJ of a non-class" : "REDUCE of a non-callable");
  if (at(args).kind != Kind::Tuple) fail("call arguments are not a tuple");
  const Global g = at(fn).global;
  if (g == Global::OrderedDict) {
    if (!at(args).items.empty()) fail("OrderedDict called with arguments");
    Value d;
    d.kind = Kind::Dict;
    d.ordered = true;
    push(make(std::move(d)));
    return;
  }
  if (newobj || g == Global::TypedStorage || g == Global::UntypedStorage || g == Global::DTypeObject)
    fail("pickle constructs a torch storage or dtype object directly, which state dicts never do");
  Value c;
  c.kind = Kind::Call;
  c.global = g;
  c.items = {args};
  push(make(std::move(c)));
}

// BUILD sets an object's state. The only instance in a state dict is the
// `_metadata` attribute of the OrderedDict that Module.state_dict() returns.
void Unpickler::build() {
  pop();  // the state: ignored
  const Value& target = at(top());
  if (target.kind != Kind::Dict || !target.ordered) fail("BUILD on something other than an OrderedDict");
}

bool Unpickler::step() {
  if (++ops_ > kMaxOps) fail("more than " + std::to_string(kMaxOps) + " opcodes");
  op_pos_ = pos_;
  if (pos_ >= n_) fail("pickle ends without STOP");
  const uint8_t op = p_[pos_++];
  switch (op) {
    case 0x80: {  // PROTO
      const uint64_t v = le(1);
      if (v < 2 || v > 5) fail("unsupported pickle protocol " + std::to_string(v));
      break;
    }
    case 0x95:  // FRAME: a length hint only
      le(8);
      break;
    case '.':  // STOP
      return false;
    case '(':  // MARK
      if (marks_.size() >= kMaxMarks) fail("MARKs nested deeper than " + std::to_string(kMaxMarks));
      marks_.push_back(stack_.size());
      break;
    case 'N': push(make_kind(Kind::None)); break;
    case 0x88:    // NEWTRUE
    case 0x89: {  // NEWFALSE
      Value v;
      v.kind = Kind::Bool;
      v.i = op == 0x88;
      push(make(std::move(v)));
      break;
    }
    case 'K': push(integer(static_cast<int64_t>(le(1)))); break;                         // BININT1
    case 'M': push(integer(static_cast<int64_t>(le(2)))); break;                         // BININT2
    case 'J': push(integer(static_cast<int32_t>(static_cast<uint32_t>(le(4))))); break;  // BININT
    case 0x8a: push(long_bytes(le(1))); break;                                           // LONG1
    case 0x8b: push(long_bytes(le(4))); break;                                           // LONG4
    case 'G': push(binfloat()); break;                                                   // BINFLOAT
    case 'X': push(string(Kind::Str, le(4))); break;                                     // BINUNICODE
    case 0x8c: push(string(Kind::Str, le(1))); break;                                    // SHORT_BINUNICODE
    case 0x8d: push(string(Kind::Str, le(8))); break;                                    // BINUNICODE8
    case 'T': push(string(Kind::Str, le(4))); break;     // BINSTRING (Python 2 str)
    case 'U': push(string(Kind::Str, le(1))); break;     // SHORT_BINSTRING
    case 'B': push(string(Kind::Bytes, le(4))); break;   // BINBYTES
    case 'C': push(string(Kind::Bytes, le(1))); break;   // SHORT_BINBYTES
    case 0x8e: push(string(Kind::Bytes, le(8))); break;  // BINBYTES8
    case ')': push(tuple({})); break;                    // EMPTY_TUPLE
    case 't': push(tuple(pop_mark())); break;            // TUPLE
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      std::vector<Ref> items(op - 0x84);
      for (size_t k = items.size(); k-- > 0;) items[k] = pop();
      push(tuple(std::move(items)));
      break;
    }
    case ']': push(make_kind(Kind::List)); break;  // EMPTY_LIST
    case 'l': {                                    // LIST
      Value v;
      v.kind = Kind::List;
      v.items = pop_mark();
      push(make(std::move(v)));
      break;
    }
    case 'a': {  // APPEND
      const Ref item = pop();
      container(top(), Kind::List, "APPEND").items.push_back(item);
      break;
    }
    case 'e': {  // APPENDS
      std::vector<Ref> items = pop_mark();
      auto& list = container(top(), Kind::List, "APPENDS").items;
      list.insert(list.end(), items.begin(), items.end());
      break;
    }
    case '}': push(make_kind(Kind::Dict)); break;  // EMPTY_DICT
    case 'd': {                                    // DICT
      Value v;
      v.kind = Kind::Dict;
      v.items = pop_mark();
      if (v.items.size() % 2 != 0) fail("DICT with an odd number of items");
      push(make(std::move(v)));
      break;
    }
    case 's': {  // SETITEM
      const Ref value = pop();
      const Ref key = pop();
      auto& items = container(top(), Kind::Dict, "SETITEM").items;
      items.push_back(key);
      items.push_back(value);
      break;
    }
    case 'u': {  // SETITEMS
      std::vector<Ref> kv = pop_mark();
      if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of items");
      auto& items = container(top(), Kind::Dict, "SETITEMS").items;
      items.insert(items.end(), kv.begin(), kv.end());
      break;
    }
    case 'q': memo_put(le(1)); break;          // BINPUT
    case 'r': memo_put(le(4)); break;          // LONG_BINPUT
    case 0x94: memo_put(memo_.size()); break;  // MEMOIZE
    case 'h': memo_get(le(1)); break;          // BINGET
    case 'j': memo_get(le(4)); break;          // LONG_BINGET
    case 'c': {                                // GLOBAL
      const std::string_view module = line();
      const std::string_view name = line();
      push(global(module, name));
      break;
    }
    case 0x93: {  // STACK_GLOBAL
      const Ref name = pop();
      const Ref module = pop();
      if (at(module).kind != Kind::Str || at(name).kind != Kind::Str) fail("STACK_GLOBAL of non-strings");
      push(global(at(module).s, at(name).s));
      break;
    }
    case 'R': reduce(false); break;  // REDUCE
    case 0x81: reduce(true); break;  // NEWOBJ
    case 'b': build(); break;        // BUILD
    case 'Q': {                      // BINPERSID
      Value v;
      v.kind = Kind::PersId;
      v.items = {pop()};
      push(make(std::move(v)));
      break;
    }
    default: {
      static const char kHex[] = "0123456789abcdef";
      fail(std::string("opcode 0x") + kHex[op >> 4] + kHex[op & 0xF] + " is not used by state dicts");
    }
  }
  return true;
}

// ------------------------------------------------------------- flattening --

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

class Flattener {
 public:
  Flattener(const Unpickler& u, const std::string& file, uint64_t visits, uint64_t name_bytes)
      : u_(u), file_(file), visit_budget_(visits), name_budget_(name_bytes) {}

  void walk(Ref dict, const std::string& prefix, int depth);
  PickledStateDict result;

 private:
  const Value& at(Ref r) const { return u_.at(r); }
  std::string key_text(Ref key, const std::string& prefix);
  PickledTensor tensor(Ref call, const std::string& name, bool allow_parameter) const;
  void check_shared_storage(const PickledTensor& t);

  const Unpickler& u_;
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

// ----------------------------------------------------------------- writer --

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

PickledStateDict unpickle_state_dict(const uint8_t* data, size_t size, const std::string& file) {
  Unpickler u(data, size, file);
  const Ref root = u.run();
  if (u.at(root).kind != Kind::Dict) throw CheckpointError(file, "data.pkl does not hold a dict of tensors");
  Flattener f(u, file, u.ops() + 4096, 16 * uint64_t{size} + (uint64_t{1} << 20));
  f.walk(root, "", 0);
  return std::move(f.result);
}

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

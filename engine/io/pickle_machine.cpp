#include "engine/io/pickle_machine.h"

#include <cstring>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "engine/io/checkpoint_error.h"
#include "engine/io/zip_archive.h"

namespace la::io::pickle_detail {
namespace {

// Limits far above what any state dict needs (a 100k-tensor dict is ~3M
// opcodes) but low enough that hostile input cannot exhaust memory or stack.
constexpr uint64_t kMaxOps = uint64_t{1} << 24;
constexpr size_t kMaxStack = size_t{1} << 20;
constexpr size_t kMaxMarks = 1024;

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const std::string& file) : p_(data), n_(size), file_(file) {}

  Ref run();
  const Value& at(Ref r) const { return values_[r]; }
  uint64_t ops() const { return ops_; }
  std::vector<Value> release_values() { return std::move(values_); }

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

}  // namespace

Unpickled unpickle(const uint8_t* data, size_t size, const std::string& file) {
  Unpickler u(data, size, file);
  Unpickled result;
  result.root = u.run();
  result.ops = u.ops();
  result.values = u.release_values();
  return result;
}

}  // namespace la::io::pickle_detail

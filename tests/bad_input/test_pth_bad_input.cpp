// Malformed .pth checkpoints: each gives a CheckpointError that names the file
// (and the tensor, where one is involved), never a crash. Runs under ASan/UBSan.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/io/checkpoint_error.h"
#include "engine/io/pickle_state_dict.h"
#include "engine/io/pth_archive.h"
#include "engine/io/zip_archive.h"

using namespace la::io;
using namespace std::string_literals;  // "...\x00..."s keeps embedded NULs

namespace {

const char* const kFile = "bad.pth";

std::string le(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

// A tiny pickle assembler, so tests can state exactly the opcodes they mean.
struct Pickle {
  std::string s = "\x80\x02";
  Pickle& op(const std::string& bytes) {
    s += bytes;
    return *this;
  }
  Pickle& global(const std::string& module, const std::string& name) {
    s += "c" + module + "\n" + name + "\n";
    return *this;
  }
  Pickle& str(const std::string& text) {
    s += "X" + le(text.size(), 4) + text;
    return *this;
  }
  Pickle& integer(int64_t v) {
    if (v >= 0 && v < 256)
      s += "K" + le(static_cast<uint64_t>(v), 1);
    else
      s += "\x8a\x08" + le(static_cast<uint64_t>(v), 8);
    return *this;
  }
  Pickle& ints(const std::vector<int64_t>& v) {
    s += "(";
    for (const int64_t x : v) integer(x);
    s += "t";
    return *this;
  }
  // _rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())
  Pickle& tensor(const std::string& storage_type, const std::string& key, int64_t numel, int64_t offset,
                 const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").op("((").str("storage").global("torch", storage_type);
    str(key).str("cpu").integer(numel).op("tQ").integer(offset).ints(shape).ints(strides).op("\x89");
    return global("collections", "OrderedDict").op(")Rt").op("R");
  }
};

struct SimpleTensor {
  std::string name, storage_type, key;
  int64_t numel, offset;
  std::vector<int64_t> shape, strides;
};

std::string state_dict(const std::vector<SimpleTensor>& ts) {
  Pickle p;
  p.op("}(");
  for (const auto& t : ts) p.str(t.name).tensor(t.storage_type, t.key, t.numel, t.offset, t.shape, t.strides);
  return p.op("u.").s;
}

// A zip with the records torch writes around `pickle` and `storages`.
std::string make_pth(const std::string& pickle, const std::map<std::string, std::string>& storages,
                     const std::string& byteorder = "little") {
  std::ostringstream out;
  ZipWriter w(out, kFile);
  w.add("bad/data.pkl", pickle.data(), pickle.size());
  w.add("bad/byteorder", byteorder.data(), byteorder.size());
  for (const auto& [key, bytes] : storages) w.add("bad/data/" + key, bytes.data(), bytes.size());
  w.add("bad/version", "3\n", 2);
  w.finish();
  return out.str();
}

const std::vector<SimpleTensor> kGoodTensors = {{"w", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1}},
                                                {"b", "HalfStorage", "1", 3, 0, {3}, {1}}};

std::string good_file() {
  return make_pth(state_dict(kGoodTensors), {{"0", std::string(24, 'a')}, {"1", std::string(6, 'b')}});
}

std::string error_of(const std::string& bytes) {
  try {
    parse_pth(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), kFile);
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(kFile), std::string::npos) << "error names the file: " << e.what();
    return e.what();
  }
  return "<no error>";
}

void expect_error(const std::string& bytes, const std::vector<std::string>& words) {
  const std::string msg = error_of(bytes);
  for (const auto& w : words)
    EXPECT_NE(msg.find(w), std::string::npos) << "message '" << msg << "' lacks '" << w << "'";
}

// Offset of the local ("PK\3\4") or central ("PK\1\2") header of `name`.
size_t header_of(const std::string& zip, const std::string& name, bool central) {
  const std::string sig = central ? std::string("PK\x01\x02", 4) : std::string("PK\x03\x04", 4);
  const size_t name_at = central ? 46 : 30;
  for (size_t p = zip.find(sig); p != std::string::npos; p = zip.find(sig, p + 1))
    if (zip.compare(p + name_at, name.size(), name) == 0 &&
        static_cast<uint8_t>(zip[p + name_at - (central ? 18 : 4)]) == name.size())
      return p;
  ADD_FAILURE() << "no header for " << name;
  return 0;
}

void patch(std::string& s, size_t at, uint64_t v, int bytes) {
  s.replace(at, static_cast<size_t>(bytes), le(v, bytes));
}

}  // namespace

TEST(PthBadInput, GoodFileParses) {
  const std::string f = good_file();
  const PthContents c = parse_pth(reinterpret_cast<const uint8_t*>(f.data()), f.size(), kFile);
  ASSERT_EQ(c.tensors.size(), 2u);
  EXPECT_EQ(c.tensors[1].name, "b");
}

// ------------------------------------------------------------------ zip --

TEST(PthBadInput, TruncatedAtEveryCutPoint) {
  const std::string f = good_file();
  for (size_t cut = 0; cut < f.size(); ++cut) {
    const std::string msg = error_of(f.substr(0, cut));
    EXPECT_NE(msg, "<no error>") << "cut at " << cut;
  }
  expect_error("", {"too short"});
}

TEST(PthBadInput, NoEndOfCentralDirectory) {
  expect_error(std::string(1000, 'x'), {"end-of-central-directory"});
  std::string f = good_file();
  f[f.size() - 22] = 'Q';  // the EOCD signature
  expect_error(f, {"end-of-central-directory"});
  expect_error(f + "trailing", {"end-of-central-directory"});
}

TEST(PthBadInput, CentralDirectoryBeyondTheFile) {
  std::string f = good_file();
  const size_t eocd64 = f.size() - 22 - 20 - 56;
  patch(f, eocd64 + 48, uint64_t{1} << 40, 8);  // ZIP64 central directory offset
  expect_error(f, {"central directory", "outside the file"});

  f = good_file();
  patch(f, f.size() - 22 - 20 + 8, UINT64_MAX - 10, 8);  // ZIP64 locator -> record offset
  expect_error(f, {"ZIP64 end record", "outside the file"});

  f = good_file();
  patch(f, eocd64 + 40, UINT64_MAX, 8);  // central directory size: offset + size overflows
  expect_error(f, {"central directory"});

  f = good_file();
  patch(f, eocd64 + 32, uint64_t{1} << 60, 8);  // record count
  expect_error(f, {"records"});
}

TEST(PthBadInput, RecordBeyondTheFile) {
  std::string f = good_file();
  const size_t c = header_of(f, "bad/data/0", true);
  patch(f, c + 20, 0xFFFFFFF0u, 4);
  patch(f, c + 24, 0xFFFFFFF0u, 4);
  expect_error(f, {"'bad/data/0'", "runs past"});

  f = good_file();
  patch(f, header_of(f, "bad/data/0", true) + 42, 0xFFFFFF00u, 4);  // local header offset
  expect_error(f, {"'bad/data/0'", "local header"});

  f = good_file();
  patch(f, header_of(f, "bad/data/0", false) + 28, 0xFFFF, 2);  // local extra length
  expect_error(f, {"'bad/data/0'"});
}

TEST(PthBadInput, Zip64ExtraFieldTooShort) {
  std::string f = good_file();
  patch(f, header_of(f, "bad/data/0", true) + 24, 0xFFFFFFFFu, 4);  // size says "see ZIP64 field"; none there
  expect_error(f, {"'bad/data/0'"});
}

TEST(PthBadInput, OverlappingRecords) {
  std::string f = good_file();
  const size_t c = header_of(f, "bad/data/0", true);
  patch(f, c + 20, 100, 4);  // data now runs over the next record's header
  patch(f, c + 24, 100, 4);
  expect_error(f, {"overlap"});
}

TEST(PthBadInput, CompressedRecord) {
  std::string f = good_file();
  patch(f, header_of(f, "bad/data/1", true) + 10, 8, 2);  // method: deflate
  expect_error(f, {"'bad/data/1'", "compressed"});
}

TEST(PthBadInput, NotATorchArchive) {
  std::ostringstream out;
  ZipWriter w(out, kFile);
  w.add("readme.txt", "hi", 2);
  w.finish();
  expect_error(out.str(), {"not a torch.save checkpoint"});

  std::ostringstream out2;
  ZipWriter w2(out2, kFile);
  w2.add("bad/other", "hi", 2);
  w2.finish();
  expect_error(out2.str(), {"data.pkl"});
}

TEST(PthBadInput, BigEndian) {
  expect_error(
      make_pth(state_dict(kGoodTensors), {{"0", std::string(24, 'a')}, {"1", std::string(6, 'b')}}, "big"),
      {"byte order", "big"});
}

// ----------------------------------------------------------- storages --

TEST(PthBadInput, MissingStorageRecord) {
  const std::string f = make_pth(state_dict(kGoodTensors), {{"0", std::string(24, 'a')}});
  expect_error(f, {"tensor b", "no record for storage '1'"});
}

TEST(PthBadInput, WrongStorageSize) {
  const std::string f =
      make_pth(state_dict(kGoodTensors), {{"0", std::string(20, 'a')}, {"1", std::string(6, 'b')}});
  expect_error(f, {"tensor w", "storage '0' holds 20 bytes", "24 bytes"});
}

TEST(PthBadInput, SharedStorageDisagreement) {
  std::vector<SimpleTensor> ts = kGoodTensors;
  ts[1].key = "0";  // HalfStorage of 3 on FloatStorage '0' of 6
  expect_error(make_pth(state_dict(ts), {{"0", std::string(24, 'a')}}), {"tensor b", "shares storage '0'"});
}

// ------------------------------------------------------------- pickle --

TEST(PthBadInput, ForeignGlobal) {
  const std::string payload = Pickle().global("os", "system").str("echo pwned").op("\x85R.").s;
  expect_error(make_pth(payload, {}), {"'os.system'", "refusing to load"});

  // Protocol 4: STACK_GLOBAL from two strings.
  std::string p4 = "\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x85R.";
  expect_error(make_pth(p4, {}), {"'os.system'", "refusing to load"});

  expect_error(make_pth(Pickle().global("builtins", "eval").op(".").s, {}), {"'builtins.eval'"});
  expect_error(make_pth(Pickle().global("numpy.core.multiarray", "_reconstruct").op(".").s, {}),
               {"'numpy.core.multiarray._reconstruct'"});
  expect_error(make_pth(Pickle().global("torch", "load").op(".").s, {}), {"'torch.load'"});
  expect_error(make_pth(Pickle().global("torch._utils", "_rebuild_device_tensor_from_numpy").op(".").s, {}),
               {"refusing"});
  // Deep inside a valid state dict, and with control bytes in the name.
  Pickle nested;
  nested.op("}(").str("w").global("posix\x01", "system").op("u.");
  expect_error(make_pth(nested.s, {}), {"'posix\\x01.system'"});
}

TEST(PthBadInput, ViewOutsideItsStorage) {
  auto with = [](SimpleTensor t) {
    return make_pth(state_dict({t}), {{t.key, std::string(static_cast<size_t>(t.numel) * 4, 'a')}});
  };
  expect_error(with({"w", "FloatStorage", "0", 6, 1, {2, 3}, {3, 1}}), {"tensor w", "outside its storage"});
  expect_error(with({"w", "FloatStorage", "0", 6, 0, {2, 3}, {4, 1}}), {"tensor w", "outside its storage"});
  expect_error(with({"w", "FloatStorage", "0", 6, 7, {0}, {1}}), {"tensor w", "outside its storage"});
  expect_error(with({"w", "FloatStorage", "0", 6, -1, {1}, {1}}), {"tensor w", "negative storage offset"});
  expect_error(with({"w", "FloatStorage", "0", 6, 0, {-2, 3}, {3, 1}}), {"tensor w", "negative"});
  expect_error(with({"w", "FloatStorage", "0", 6, 0, {2, 3}, {3}}), {"tensor w", "differ in length"});
}

TEST(PthBadInput, HugeShapesAndOverflow) {
  auto pkl = [](SimpleTensor t) { return make_pth(state_dict({t}), {}); };
  const int64_t big = int64_t{1} << 40;
  expect_error(pkl({"w", "FloatStorage", "0", 6, 0, {big, big}, {big, 1}}), {"tensor w", "overflow"});
  expect_error(pkl({"w", "FloatStorage", "0", 6, INT64_MAX, {2}, {1}}), {"tensor w", "overflow"});
  expect_error(pkl({"w", "FloatStorage", "0", int64_t{1} << 62, 0, {1}, {1}}), {"tensor w", "too large"});
  expect_error(pkl({"w", "FloatStorage", "0", -5, 0, {1}, {1}}), {"tensor w", "too large"});
  expect_error(
      pkl({"w", "FloatStorage", "0", 6, 0, std::vector<int64_t>(17, 1), std::vector<int64_t>(17, 1)}),
      {"tensor w", "rank"});
  // A storage claiming more bytes than the file holds.
  expect_error(
      make_pth(state_dict({{"w", "FloatStorage", "0", int64_t{1} << 50, 0, {1}, {1}}}), {{"0", "abcd"}}),
      {"tensor w", "holds 4 bytes"});
}

TEST(PthBadInput, DeepNestingAndStackAbuse) {
  expect_error(make_pth("\x80\x02" + std::string(100000, '(') + ".", {}), {"MARK"});
  expect_error(make_pth("\x80\x02" + std::string(2000000, 'N') + ".", {}), {"stack"});
  expect_error(make_pth("\x80\x02" + std::string(100000, ']') + ".", {}), {"STOP"});
  // Dicts nested through the memo (slot 0 holds the latest), each also
  // appended to a junk list so the stack stays flat; the root then gets the
  // last one under "deep".
  auto chain = [](const std::string& first, const std::string& step, int n) {
    Pickle p;
    p.op("}").str("junk").op("]").op(first).op("a");
    for (int i = 0; i < n; ++i) p.op(step).op("a");
    return make_pth(p.op("s").str("deep").op("h\x00s."s).s, {});
  };
  const std::string first = "}q\x00"s;
  expect_error(chain(first,
                     "(" + Pickle().str("k").s.substr(2) +
                         "h\x00"
                         "dq\x00"s,
                     200),
               {"nested deeper"});
  // Exponential sharing: each level holds the previous one twice.
  const std::string twice = "(" + Pickle().str("a").s.substr(2) + "h\x00"s + Pickle().str("b").s.substr(2) +
                            "h\x00"
                            "dq\x00"s;
  expect_error(chain(first, twice, 60), {"shared too often"});
  // A dict that contains itself.
  expect_error(make_pth(Pickle().op("}q\x01"s).str("self").op("h\x01s."s).s, {}), {"nested deeper"});
  // A list that contains itself is just a skipped leaf.
  const std::string self_list = make_pth(Pickle()
                                             .op("}")
                                             .str("l")
                                             .op("]q\x02h\x02"
                                                 "as.")
                                             .s,
                                         {});
  const PthContents c =
      parse_pth(reinterpret_cast<const uint8_t*>(self_list.data()), self_list.size(), kFile);
  EXPECT_EQ(c.skipped, std::vector<std::string>{"l"});
}

TEST(PthBadInput, MalformedPickles) {
  expect_error(make_pth("", {}), {"ends without STOP"});
  expect_error(make_pth("\x80\x02", {}), {"ends without STOP"});
  expect_error(make_pth("\x80\x02X\xff\xff\xff\x7f", {}), {"middle of an opcode"});
  expect_error(make_pth("\x80\x02\x8d" + le(UINT64_MAX, 8), {}), {"middle of an opcode"});
  expect_error(make_pth("\x80\x02\x8b" + le(0xFFFFFFFF, 4), {}), {"middle of an opcode"});
  expect_error(make_pth("\x80\x02"
                        "cos\nsys",
                        {}),
               {"unterminated"});
  expect_error(make_pth("\x80\x09.", {}), {"protocol"});
  expect_error(make_pth("\x80\x02h\x05.", {}), {"memo"});
  expect_error(make_pth("\x80\x02s.", {}), {"underflow"});
  expect_error(make_pth("\x80\x02]NNs.", {}), {"not a dict"});
  expect_error(make_pth("\x80\x02}Na.", {}), {"not a list"});
  expect_error(make_pth("\x80\x02]N.", {}), {"STOP"});
  expect_error(make_pth("\x80\x02].", {}), {"does not hold a dict"});
  expect_error(make_pth("\x80\x02}(Nu.", {}), {"odd"});
  expect_error(make_pth("\x80\x02}(NK\x01u.", {}), {"not a string or int"});
  expect_error(make_pth("\x80\x02}}b.", {}), {"BUILD"});
  expect_error(make_pth("\x80\x02"
                        "cos\nsystem\n}b.",
                        {}),
               {"'os.system'"});
  expect_error(make_pth(Pickle().op("}").global("collections", "OrderedDict").op("]\x85R.").s, {}),
               {"OrderedDict called with arguments"});
  expect_error(make_pth(Pickle().global("torch", "FloatStorage").op(")R.").s, {}), {"storage or dtype"});
  expect_error(make_pth("\x80\x02NNR.", {}), {"non-callable"});
  expect_error(make_pth("\x80\x02\x01.", {}), {"opcode 0x01"});
  expect_error(make_pth("\x80\x02"
                        "cposix\nsystem\n.",
                        {}),
               {"'posix.system'"});

  // Truncating a valid pickle anywhere gives an error, not a crash.
  const std::string pkl = state_dict(kGoodTensors);
  for (size_t cut = 0; cut < pkl.size(); ++cut) {
    const std::string msg =
        error_of(make_pth(pkl.substr(0, cut), {{"0", std::string(24, 'a')}, {"1", std::string(6, 'b')}}));
    EXPECT_NE(msg, "<no error>") << "cut at " << cut;
  }
}

TEST(PthBadInput, MalformedTensorCalls) {
  auto file_with = [](const Pickle& value) {
    Pickle p;
    p.op("}").str("t").op(value.s.substr(2)).op("s.");
    return make_pth(p.s, {});
  };
  // Wrong argument count.
  expect_error(file_with(Pickle().global("torch._utils", "_rebuild_tensor_v2").op(")R")),
               {"tensor t", "arguments"});
  // Storage that is not a persistent id.
  expect_error(file_with(Pickle().global("torch._utils", "_rebuild_tensor_v2").op("(NK\x00)))NNtR"s)),
               {"tensor t", "persistent"});
  // Parameter wrapping something that is not a tensor.
  expect_error(file_with(Pickle().global("torch._utils", "_rebuild_parameter").op("(NNNtR")),
               {"tensor t", "_rebuild_parameter"});
  // v3 without a dtype.
  Pickle v3;
  v3.global("torch._utils", "_rebuild_tensor_v3")
      .op("((")
      .str("storage")
      .global("torch.storage", "UntypedStorage");
  v3.str("0").str("cpu").integer(4).op("tQ").integer(0).ints({4}).ints({1}).op("\x89").op("NNtR");
  expect_error(file_with(v3), {"tensor t", "dtype"});
  // Duplicate names after flattening.
  Pickle dup;
  dup.op("}(").str("a.b").integer(1).str("a").op("}").str("b").integer(2).op("su.");
  expect_error(make_pth(dup.s, {}), {"tensor a.b", "occurs twice"});
}

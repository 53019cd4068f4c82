// The ATen-free .pth core: zip container, restricted unpickler and writer,
// round trips through our own reader, and (with LA_TORCH_PYTHON set) checks
// against files torch.save wrote and torch.load of files we wrote.
//
// The Python helper is found at $LA_SOURCE_DIR/tests/unit/make_pth_fixtures.py,
// or relative to the working directory when LA_SOURCE_DIR is unset.
#include <gtest/gtest.h>

#include "tests/common/torch_python.h"
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/io/checkpoint_error.h"
#include "engine/io/mapped_file.h"
#include "engine/io/pickle_state_dict.h"
#include "engine/io/pth_archive.h"
#include "engine/io/zip_archive.h"

using namespace la::io;
namespace fs = std::filesystem;

namespace {

constexpr DType kAllDTypes[] = {DType::F64,     DType::F32,     DType::F16, DType::BF16,
                                DType::F8_E4M3, DType::F8_E5M2, DType::I64, DType::I32,
                                DType::I16,     DType::I8,      DType::U8,  DType::BOOL};

const uint8_t* bytes_of(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string pattern(size_t n, unsigned seed, DType dtype) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 17 + 7) & 0xFF);
  if (dtype == DType::BOOL)
    for (auto& c : s) c = static_cast<char>(c & 1);
  return s;
}

struct OwnedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

std::vector<PthTensorBytes> views_of(const std::vector<OwnedTensor>& ts) {
  std::vector<PthTensorBytes> out;
  for (const auto& t : ts) out.push_back({t.name, t.dtype, t.shape, t.bytes.data()});
  return out;
}

std::vector<OwnedTensor> every_dtype() {
  std::vector<OwnedTensor> ts;
  unsigned seed = 0;
  for (const DType d : kAllDTypes) {
    const std::vector<int64_t> shape = {2, 3};
    ts.push_back(
        {"layer." + std::string(dtype_safetensors_name(d)), d, shape, pattern(6 * dtype_size(d), ++seed, d)});
  }
  ts.push_back({"scalar", DType::F32, {}, pattern(4, 99, DType::F32)});
  ts.push_back({"empty", DType::F16, {0, 3}, ""});
  ts.push_back({"rank4", DType::BF16, {2, 1, 3, 2}, pattern(24, 98, DType::BF16)});
  return ts;
}

std::string write_to_string(const std::vector<OwnedTensor>& ts, const std::string& archive = "model") {
  std::ostringstream out;
  write_pth(out, archive, views_of(ts), "model.pth");
  return out.str();
}

// The bytes of tensor `t` in logical (row-major) order, read through its strides.
std::string logical_bytes(const uint8_t* file, const ZipSpan& storage, const PickledTensor& t) {
  const size_t elem = dtype_size(t.dtype);
  int64_t numel = 1;
  for (const int64_t d : t.shape) numel *= d;
  std::string out;
  std::vector<int64_t> idx(t.shape.size(), 0);
  for (int64_t n = 0; n < numel; ++n) {
    int64_t off = t.storage_offset;
    for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides[d];
    out.append(reinterpret_cast<const char*>(file + storage.offset + static_cast<uint64_t>(off) * elem),
               elem);
    for (size_t d = idx.size(); d-- > 0;) {
      if (++idx[d] < t.shape[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

std::string hex(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : s) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out.empty() ? "-" : out;
}

// ------------------------------------------------------- Python plumbing --

const char* torch_python() { return std::getenv("LA_TORCH_PYTHON"); }

std::string fixture_script() {
  const char* src = std::getenv("LA_SOURCE_DIR");
  return std::string(src && *src ? src : ".") + "/tests/unit/make_pth_fixtures.py";
}

int run_python(const std::string& args) {
  const std::string cmd = std::string("'") + torch_python() + "' '" + fixture_script() + "' " + args;
  return std::system(cmd.c_str());
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "la_pth_XXXXXX").string();
    path = ::mkdtemp(tmpl.data()) ? fs::path(tmpl) : fs::path();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

struct Expected {
  DType dtype;
  int64_t offset;
  std::vector<int64_t> shape, strides;
  std::string hex;
};
struct ExpectedFile {
  std::vector<std::pair<std::string, Expected>> tensors;
  std::vector<std::string> skipped;
};

std::map<std::string, ExpectedFile> read_expected(const fs::path& path) {
  std::map<std::string, ExpectedFile> out;
  std::ifstream in(path);
  std::string line, current;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string kind, name;
    f >> kind >> name;
    if (kind == "file") {
      current = name;
      out[current];
    } else if (kind == "skipped") {
      out[current].skipped.push_back(name);
    } else if (kind == "tensor") {
      std::string dtype;
      size_t rank = 0;
      Expected e;
      f >> dtype >> e.offset >> rank;
      e.dtype = *dtype_from_safetensors_name(dtype);
      e.shape.resize(rank);
      e.strides.resize(rank);
      for (auto& s : e.shape) f >> s;
      for (auto& s : e.strides) f >> s;
      f >> e.hex;
      out[current].tensors.emplace_back(name, e);
    }
  }
  return out;
}

}  // namespace

// ------------------------------------------------------------------ zip --

TEST(Crc32, KnownValues) {
  EXPECT_EQ(crc32_update(0, "123456789", 9), 0xCBF43926u);
  EXPECT_EQ(crc32_update(0, "", 0), 0u);
  const std::string long_text = pattern(1000, 3, DType::U8);
  EXPECT_EQ(crc32_update(crc32_update(0, long_text.data(), 333), long_text.data() + 333, 667),
            crc32_update(0, long_text.data(), 1000));
}

TEST(ZipArchive, WriterOutputIsAlignedAndReadable) {
  for (const uint64_t threshold : {uint64_t{0xFFFFFFFF}, uint64_t{0}, uint64_t{200}}) {
    std::ostringstream out;
    ZipWriter w(out, "t.zip");
    w.set_zip64_threshold_for_testing(threshold);
    std::map<std::string, std::string> records;
    for (int i = 0; i < 10; ++i) {
      const std::string name = "arch/data/" + std::to_string(i);
      records[name] = pattern(static_cast<size_t>(i * 37), static_cast<unsigned>(i), DType::U8);
      EXPECT_EQ(w.add(name, records[name].data(), records[name].size()),
                crc32_update(0, records[name].data(), records[name].size()));
    }
    w.finish();
    const std::string zip_bytes = out.str();
    EXPECT_EQ(w.bytes_written(), zip_bytes.size());
    const ZipArchive zip(bytes_of(zip_bytes), zip_bytes.size(), "t.zip");
    EXPECT_EQ(zip.names().size(), records.size());
    for (const auto& [name, data] : records) {
      const auto span = zip.find(name);
      ASSERT_TRUE(span) << name;
      EXPECT_EQ(span->offset % 64, 0u) << name;
      EXPECT_EQ(zip_bytes.substr(span->offset, span->size), data) << name << " threshold " << threshold;
      EXPECT_EQ(span->crc32, crc32_update(0, data.data(), data.size()));
    }
    EXPECT_FALSE(zip.find("arch/data/10"));
    EXPECT_FALSE(zip.find("arch/data/"));
  }
}

// ---------------------------------------------------------------- pickle --

TEST(PickleStateDict, WriterOutputUnpicklesToTheSameTensors) {
  std::vector<PickledTensor> in;
  for (const DType d : kAllDTypes) {
    PickledTensor t;
    t.name = "w." + std::string(dtype_safetensors_name(d));
    t.dtype = d;
    t.storage_key = std::to_string(in.size());
    t.storage_numel = 100000;  // BININT and LONG1 sized values below
    t.storage_offset = 70000;
    t.shape = {3, 5};
    t.strides = {1, 6000};
    in.push_back(t);
  }
  in.back().storage_numel = int64_t{1} << 33;
  in.back().storage_offset = int64_t{1} << 32;
  const std::string pkl = pickle_state_dict(in);
  const PickledStateDict out = unpickle_state_dict(bytes_of(pkl), pkl.size(), "x.pth");
  ASSERT_EQ(out.tensors.size(), in.size());
  EXPECT_TRUE(out.skipped.empty());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out.tensors[i].name, in[i].name);
    EXPECT_EQ(out.tensors[i].dtype, in[i].dtype);
    EXPECT_EQ(out.tensors[i].storage_key, in[i].storage_key);
    EXPECT_EQ(out.tensors[i].storage_numel, in[i].storage_numel);
    EXPECT_EQ(out.tensors[i].storage_offset, in[i].storage_offset);
    EXPECT_EQ(out.tensors[i].shape, in[i].shape);
    EXPECT_EQ(out.tensors[i].strides, in[i].strides);
  }
}

TEST(PickleStateDict, ManyTensorsUseBatchesAndLongMemoIndices) {
  std::vector<PickledTensor> in(2501);
  for (size_t i = 0; i < in.size(); ++i) {
    in[i].name = "t" + std::to_string(i);
    in[i].storage_key = std::to_string(i);
    in[i].storage_numel = 4;
    in[i].shape = {4};
    in[i].strides = {1};
  }
  const std::string pkl = pickle_state_dict(in);
  const PickledStateDict out = unpickle_state_dict(bytes_of(pkl), pkl.size(), "x.pth");
  ASSERT_EQ(out.tensors.size(), in.size());
  EXPECT_EQ(out.tensors.back().name, "t2500");
}

TEST(PickleStateDict, WriterRejectsViewsOutsideTheirStorage) {
  PickledTensor t;
  t.name = "bad";
  t.storage_key = "0";
  t.storage_numel = 4;
  t.shape = {5};
  t.strides = {1};
  EXPECT_THROW(pickle_state_dict({t}), CheckpointError);
}

// ------------------------------------------------------------ round trip --

TEST(PthArchive, RoundTripEveryDType) {
  const auto ts = every_dtype();
  const std::string file = write_to_string(ts);
  const PthContents c = parse_pth(bytes_of(file), file.size(), "model.pth");
  EXPECT_EQ(c.prefix, "model");
  ASSERT_EQ(c.tensors.size(), ts.size());
  EXPECT_EQ(c.storages.size(), ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    const PickledTensor& t = c.tensors[i];
    EXPECT_EQ(t.name, ts[i].name);
    EXPECT_EQ(t.dtype, ts[i].dtype);
    EXPECT_EQ(t.shape, ts[i].shape);
    EXPECT_EQ(t.storage_offset, 0);
    const ZipSpan span = c.storages.at(t.storage_key);
    EXPECT_EQ(span.offset % 64, 0u);
    EXPECT_EQ(file.substr(span.offset, span.size), ts[i].bytes) << t.name;
    EXPECT_EQ(logical_bytes(bytes_of(file), span, t), ts[i].bytes) << t.name;
  }
  EXPECT_EQ(c.tensors[0].strides, (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(c.tensors.back().strides, (std::vector<int64_t>{6, 6, 2, 1}));

  // Exactly torch's record list.
  const ZipArchive zip(bytes_of(file), file.size(), "model.pth");
  std::vector<std::string> want = {"model/data.pkl", "model/.format_version", "model/.storage_alignment",
                                   "model/byteorder"};
  for (size_t i = 0; i < ts.size(); ++i) want.push_back("model/data/" + std::to_string(i));
  want.push_back("model/version");
  want.push_back("model/.data/serialization_id");
  EXPECT_EQ(zip.names(), want);
}

TEST(PthArchive, WriteToPathNamesTheArchiveAfterTheFile) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  const auto ts = every_dtype();
  const std::string path = (dir.path / "my_weights.pth").string();
  write_pth(path, views_of(ts));
  const auto mapped = MappedFile::open(path);
  const PthContents c = parse_pth(mapped->data(), mapped->size(), path);
  EXPECT_EQ(c.prefix, "my_weights");
  EXPECT_EQ(c.tensors.size(), ts.size());
}

TEST(PthArchive, EmptyStateDict) {
  const std::string file = write_to_string({});
  const PthContents c = parse_pth(bytes_of(file), file.size(), "model.pth");
  EXPECT_TRUE(c.tensors.empty());
}

// ----------------------------------------------------- against PyTorch --

TEST(PthArchiveTorch, ParsesWhatTorchSaveWrites) {
  LA_REQUIRE_TORCH_PYTHON(py);
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  ASSERT_EQ(run_python("make '" + dir.path.string() + "'"), 0) << "running " << fixture_script();
  const auto expected = read_expected(dir.path / "expected.txt");
  ASSERT_GE(expected.size(), 6u);
  for (const auto& [file_name, want] : expected) {
    SCOPED_TRACE(file_name);
    const std::string path = (dir.path / file_name).string();
    const auto mapped = MappedFile::open(path);
    const PthContents c = parse_pth(mapped->data(), mapped->size(), path);
    EXPECT_EQ(c.skipped, want.skipped);
    ASSERT_EQ(c.tensors.size(), want.tensors.size());
    for (size_t i = 0; i < c.tensors.size(); ++i) {
      const PickledTensor& t = c.tensors[i];
      const auto& [name, e] = want.tensors[i];
      SCOPED_TRACE(name);
      EXPECT_EQ(t.name, name);
      EXPECT_EQ(t.dtype, e.dtype);
      EXPECT_EQ(t.shape, e.shape);
      EXPECT_EQ(t.strides, e.strides);
      EXPECT_EQ(t.storage_offset, e.offset);
      EXPECT_EQ(hex(logical_bytes(mapped->data(), c.storages.at(t.storage_key), t)), e.hex);
    }
    if (file_name == "views.pth") {  // one storage each for shared_a/shared_b and tied_1/tied_2
      EXPECT_EQ(c.tensors[1].storage_key, c.tensors[2].storage_key);
      EXPECT_EQ(c.tensors[3].storage_key, c.tensors[4].storage_key);
      EXPECT_EQ(c.storages.size(), 4u);
    }
  }
}

TEST(PthArchiveTorch, TorchLoadsWhatWeWriteBitExactly) {
  LA_REQUIRE_TORCH_PYTHON(py);
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  auto ts = every_dtype();
  for (int i = 0; i < 1001; ++i)  // past one SETITEMS batch and 256 memo slots
    ts.push_back(
        {"many." + std::to_string(i), DType::F16, {1}, pattern(2, static_cast<unsigned>(i), DType::F16)});
  const std::string path = (dir.path / "ours.pth").string();
  write_pth(path, views_of(ts));
  {
    std::ofstream exp(dir.path / "ours.txt");
    for (const auto& t : ts) {
      exp << "tensor " << t.name << ' ' << dtype_safetensors_name(t.dtype) << " 0 " << t.shape.size();
      for (const int64_t d : t.shape) exp << ' ' << d;
      for (size_t d = 0; d < t.shape.size(); ++d) exp << " 0";  // strides: unused by verify
      exp << ' ' << hex(t.bytes) << '\n';
    }
  }
  EXPECT_EQ(run_python("verify '" + path + "' '" + (dir.path / "ours.txt").string() + "'"), 0);
}

TEST(PthArchiveTorch, PythonZipfileReadsForcedZip64) {
  LA_REQUIRE_TORCH_PYTHON(py);
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  const std::string path = (dir.path / "z64.zip").string();
  {
    std::ofstream out(path, std::ios::binary);
    ZipWriter w(out, path);
    w.set_zip64_threshold_for_testing(0);
    for (int i = 0; i < 5; ++i) {
      const std::string data = pattern(static_cast<size_t>(100 * i), static_cast<unsigned>(i), DType::U8);
      w.add("z/" + std::to_string(i), data.data(), data.size());
    }
    w.finish();
  }
  EXPECT_EQ(run_python("zipcheck '" + path + "'"), 0);
}

// A real ZIP64 checkpoint: one record past 4 GiB, then one at an offset past
// it. Needs ~4.3 GB of disk and, for torch.load, of memory: opt-in only.
TEST(PthArchiveTorch, Zip64CheckpointPast4GiB) {
  if (!std::getenv("LA_PTH_BIG_TEST")) GTEST_SKIP() << "set LA_PTH_BIG_TEST=1 to write a 4.3 GB checkpoint";
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  const size_t big = (size_t{1} << 32) + 64;
  // Untouched anonymous pages read as zeros without using memory.
  void* zeros = ::mmap(nullptr, big, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(zeros, MAP_FAILED);
  const std::string tail = pattern(8, 1, DType::F32);
  const std::vector<PthTensorBytes> ts = {{"big", DType::U8, {static_cast<int64_t>(big)}, zeros},
                                          {"after", DType::F32, {2}, tail.data()}};
  const std::string path = (dir.path / "big.pth").string();
  write_pth(path, ts);
  ::munmap(zeros, big);
  {
    const auto mapped = MappedFile::open(path);
    const PthContents c = parse_pth(mapped->data(), mapped->size(), path);
    ASSERT_EQ(c.tensors.size(), 2u);
    EXPECT_EQ(c.storages.at("0").size, big);
    const ZipSpan after = c.storages.at("1");
    EXPECT_GT(after.offset, uint64_t{0xFFFFFFFF});
    EXPECT_EQ(std::memcmp(mapped->data() + after.offset, tail.data(), 8), 0);
  }
  if (torch_python()) {
    EXPECT_EQ(run_python("zipcheck '" + path + "'"), 0);
  }
}

// Malformed safetensors files: each gives a CheckpointError that names the
// file (and tensor), never a crash. Runs under ASan/UBSan in CI.
#include <gtest/gtest.h>

#include <string>

#include "engine/io/checkpoint_error.h"
#include "engine/io/safetensors_header.h"

using namespace la::io;

namespace {

std::string with_header(const std::string& json, const std::string& data = std::string(64, '\0'),
                        uint64_t declared_len = UINT64_MAX) {
  const uint64_t n = declared_len == UINT64_MAX ? json.size() : declared_len;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + json + data;
}

std::string parse_error(const std::string& bytes, const std::string& name = "model.safetensors") {
  try {
    parse_safetensors_header(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << "error names the file: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

void expect_error(const std::string& bytes, const std::string& words) {
  const std::string msg = parse_error(bytes);
  EXPECT_NE(msg.find(words), std::string::npos) << "message '" << msg << "' lacks '" << words << "'";
}

const std::string kGood = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})";

}  // namespace

TEST(SafetensorsBadInput, ShorterThanTheLengthField) { expect_error("abc", "too short"); }

TEST(SafetensorsBadInput, HeaderLengthBeyondTheFile) {
  expect_error(with_header(kGood, std::string(16, '\0'), 100000), "runs past the end");
}

TEST(SafetensorsBadInput, HeaderLengthAbsurd) {
  expect_error(with_header(kGood, std::string(16, '\0'), 1ull << 62), "exceeds the 100 MB limit");
}

// A .pth given where a .safetensors belongs (lora=Wan2.1_VAE.pth, say): named as what it is.
TEST(SafetensorsBadInput, ZipArchiveIsNamedAsOne) {
  expect_error(std::string("PK\x03\x04") + std::string(60, '\0'), "is a ZIP archive (a PyTorch .pth file?)");
}

TEST(SafetensorsBadInput, TruncatedAtEveryByte) {
  const std::string full = with_header(kGood, std::string(16, '\0'));
  for (size_t cut = 0; cut < full.size(); ++cut) {
    EXPECT_THROW(parse_safetensors_header(reinterpret_cast<const uint8_t*>(full.data()), cut, "t"),
                 CheckpointError) << "cut at " << cut;
  }
}

TEST(SafetensorsBadInput, NotJson) { expect_error(with_header("{\"w\": [1,2"), "not valid JSON"); }

TEST(SafetensorsBadInput, NotAnObject) { expect_error(with_header("[1,2,3]"), "not a JSON object"); }

TEST(SafetensorsBadInput, DeepNestingIsRefusedBeforeParsing) {
  expect_error(with_header(std::string(100000, '[') + std::string(100000, ']')), "nests too deeply");
}

TEST(SafetensorsBadInput, UnknownDtype) {
  expect_error(with_header(R"({"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})"),
               "tensor w: unsupported dtype 'F128'");
}

TEST(SafetensorsBadInput, NegativeOrFractionalShape) {
  expect_error(with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})"), "tensor w");
  expect_error(with_header(R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})"), "tensor w");
}

TEST(SafetensorsBadInput, RankAboveTheLimit) {
  expect_error(with_header(R"({"w":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}})"),
               "rank 17");
}

TEST(SafetensorsBadInput, OffsetsOutOfRange) {
  expect_error(with_header(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,1000]}})"), "outside the data section");
  expect_error(with_header(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[16,0]}})"), "outside the data section");
  expect_error(with_header(R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0]}})"), "two non-negative integers");
}

TEST(SafetensorsBadInput, DtypeTimesShapeDiffersFromByteLength) {
  expect_error(with_header(R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})"),
               "tensor w: dtype F32 x shape [2,3] does not match its 16 data bytes");
}

TEST(SafetensorsBadInput, ShapeProductOverflows) {
  expect_error(with_header(R"({"w":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}})"),
               "does not match");
}

TEST(SafetensorsBadInput, OverlappingTensors) {
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                           R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})"),
               "overlaps tensor a");
}

TEST(SafetensorsBadInput, DuplicateTensorName) {
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})"),
               "tensor a: named twice");
}

TEST(SafetensorsBadInput, MetadataMustBeStrings) {
  expect_error(with_header(R"({"__metadata__":{"k":1}})"), "__metadata__ value 'k'");
}

TEST(SafetensorsBadInput, EntryMissingFields) {
  expect_error(with_header(R"({"w":{"dtype":"F32"}})"), "tensor w: header entry needs");
}

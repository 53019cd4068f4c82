// Round trips of the ATen-free safetensors writer and parser.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "engine/io/checkpoint_error.h"
#include "engine/io/mapped_file.h"
#include "engine/io/safetensors_format.h"
#include "engine/io/safetensors_header.h"
#include "tests/common/temp_dir.h"

using namespace la::io;

namespace {

const DType kAll[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2,
                      DType::I64, DType::I32, DType::I16, DType::I8, DType::U8, DType::BOOL};

}  // namespace

TEST(SafetensorsFormat, EveryDtypeRoundTripsBitExactly) {
  la::test::TempDir dir;
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<RawTensor> tensors;
  for (DType t : kAll) {
    const std::vector<int64_t> shape = {3, 5};
    std::vector<uint8_t> bytes(15 * dtype_size(t));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 37 + static_cast<int>(t));
    if (t == DType::BOOL)
      for (auto& b : bytes) b &= 1;
    payloads.push_back(std::move(bytes));
    tensors.push_back({std::string("t_") + std::string(dtype_safetensors_name(t)), t, shape, nullptr});
  }
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].data = payloads[i].data();
  const std::string path = dir.file("all.safetensors");
  write_safetensors_raw(path, tensors, {{"format", "pt"}, {"note", "x"}});

  const auto file = MappedFile::open(path);
  const auto h = parse_safetensors_header(file->data(), file->size(), path);
  EXPECT_EQ(h.data_start % 8, 0u) << "header is padded so data is 8-byte aligned";
  EXPECT_EQ(h.metadata.at("format"), "pt");
  ASSERT_EQ(h.entries.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& e = h.entries[i];  // data-offset order == write order
    EXPECT_EQ(e.name, tensors[i].name);
    EXPECT_EQ(e.dtype, tensors[i].dtype);
    EXPECT_EQ(e.shape, tensors[i].shape);
    ASSERT_EQ(e.end - e.begin, payloads[i].size());
    EXPECT_EQ(0, std::memcmp(file->data() + e.begin, payloads[i].data(), payloads[i].size())) << e.name;
  }
}

TEST(SafetensorsFormat, ZeroElementAndScalarTensors) {
  la::test::TempDir dir;
  const float one = 1.0f;
  write_safetensors_raw(dir.file("z.safetensors"),
                        {{"empty", DType::F32, {0, 4}, nullptr}, {"scalar", DType::F32, {}, &one}});
  const auto file = MappedFile::open(dir.file("z.safetensors"));
  const auto h = parse_safetensors_header(file->data(), file->size(), "z");
  ASSERT_EQ(h.entries.size(), 2u);
  for (const auto& e : h.entries) {
    if (e.name == "empty") EXPECT_EQ(e.end, e.begin);
    else EXPECT_EQ(e.end - e.begin, 4u);
  }
}

TEST(SafetensorsFormat, WriterRefusesDuplicateNames) {
  la::test::TempDir dir;
  const float v = 0;
  EXPECT_THROW(write_safetensors_raw(dir.file("d.safetensors"),
                                     {{"a", DType::F32, {1}, &v}, {"a", DType::F32, {1}, &v}}),
               CheckpointError);
}

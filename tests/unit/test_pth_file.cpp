// .pth checkpoints as at::Tensors: our writer's output and real torch.save
// files read back bit-exactly (views, shared storages, every dtype).
#include <gtest/gtest.h>

#include "tests/common/torch_python.h"

#include <ATen/ATen.h>
#include <cstdlib>

#include "engine/io/pth_file.h"
#include "engine/io/pth_writer.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/weight_store.h"
#include "tests/common/temp_dir.h"

using namespace la::io;

namespace {

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         at::equal(a.reshape({-1}).contiguous().view(at::kByte), b.reshape({-1}).contiguous().view(at::kByte));
}

}  // namespace

TEST(PthFile, WriterRoundTripEveryDtype) {
  la::test::TempDir dir;
  const at::Tensor base = at::randn({3, 7}) * 4;
  NamedTensors in = {{"f64", base.to(at::kDouble)}, {"f32", base}, {"f16", base.to(at::kHalf)},
                     {"bf16", base.to(at::kBFloat16)}, {"f8", base.to(at::kFloat8_e4m3fn)},
                     {"f8e5m2", base.to(at::kFloat8_e5m2)}, {"i64", base.to(at::kLong)},
                     {"i32", base.to(at::kInt)}, {"i16", base.to(at::kShort)}, {"i8", base.to(at::kChar)},
                     {"u8", base.abs().to(at::kByte)}, {"bool", base.gt(0)}, {"view", base.t()},
                     {"empty", at::zeros({0, 3})}};
  write_pth_tensors(dir.file("w.pth"), in);
  const auto out = PthFile(dir.file("w.pth")).tensors();
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [name, t] : in) EXPECT_TRUE(same_bytes(out.at(name), t)) << name;
}

TEST(PthFile, RealTorchSaveFilesReadBitExactly) {
  LA_REQUIRE_TORCH_PYTHON(py);
  const char* src = std::getenv("LA_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "LA_SOURCE_DIR not set (meson sets it)";
  la::test::TempDir dir;
  const std::string cmd = std::string(py) + " " + src + "/tests/unit/torch_save_with_expected.py " + dir.path().string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  const auto expected = SafetensorsFile(dir.file("expected.safetensors")).tensors();
  auto saved = WeightStore::open(dir.file("saved.pth"));
  saved.add_file(dir.file("pytorch_model.bin"));  // HF's name for the same format
  ASSERT_EQ(saved.size(), expected.size());
  for (const auto& [name, want] : expected) {
    const std::string key = name.rfind("module.", 0) == 0 ? name.substr(7) : name;
    EXPECT_TRUE(same_bytes(saved.get(key, want.sizes()), want)) << key;
  }
  // The view keeps PyTorch's strides and storage offset, the shared storage is one buffer.
  const at::Tensor view = saved.get_unchecked("transposed_slice");
  EXPECT_FALSE(view.is_contiguous());
  EXPECT_EQ(saved.get_unchecked("share.a").storage().data(), saved.get_unchecked("share.b").storage().data());
}

// at::Tensor round trips through write_safetensors / SafetensorsFile.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/io/safetensors_file.h"
#include "engine/io/safetensors_writer.h"
#include "tests/common/temp_dir.h"

using namespace la::io;

TEST(SafetensorsFile, EveryDtypeRoundTripsBitExactly) {
  la::test::TempDir dir;
  const at::Tensor base = at::randn({4, 6}) * 3;
  const NamedTensors in = {
      {"f64", base.to(at::kDouble)}, {"f32", base}, {"f16", base.to(at::kHalf)},
      {"bf16", base.to(at::kBFloat16)}, {"f8e4m3", base.to(at::kFloat8_e4m3fn)},
      {"f8e5m2", base.to(at::kFloat8_e5m2)}, {"i64", base.to(at::kLong)}, {"i32", base.to(at::kInt)},
      {"i16", base.to(at::kShort)}, {"i8", base.to(at::kChar)}, {"u8", base.abs().to(at::kByte)},
      {"bool", base.gt(0)}, {"noncontig", base.t()}, {"scalar", at::scalar_tensor(2.5)},
  };
  write_safetensors(dir.file("a.safetensors"), in, {{"k", "v"}});
  SafetensorsFile f(dir.file("a.safetensors"));
  EXPECT_EQ(f.metadata().at("k"), "v");
  const auto out = f.tensors();
  ASSERT_EQ(out.size(), in.size());
  for (const auto& [name, t] : in) {
    const at::Tensor& r = out.at(name);
    EXPECT_EQ(r.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(r.sizes(), t.sizes()) << name;
    // Compare raw bytes: equal() is not defined for float8 on every build.
    const at::Tensor a = t.reshape({-1}).contiguous().view(at::kByte), b = r.reshape({-1}).contiguous().view(at::kByte);
    EXPECT_TRUE(at::equal(a, b)) << name;
  }
}

TEST(SafetensorsFile, TensorsOutliveTheFileObjectAndAreWritableCopyOnWrite) {
  la::test::TempDir dir;
  write_safetensors(dir.file("b.safetensors"), {{"w", at::ones({8})}});
  at::Tensor w;
  {
    SafetensorsFile f(dir.file("b.safetensors"));
    w = f.tensors().at("w");
  }
  w.add_(1);  // a private mapping: allowed, and the file is unchanged
  EXPECT_TRUE(at::equal(w, at::full({8}, 2.0)));
  EXPECT_TRUE(at::equal(SafetensorsFile(dir.file("b.safetensors")).tensors().at("w"), at::ones({8})));
}

// Output conversion: RGB truncates like the reference, YUV is BT.601 limited range.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/video/pixel_convert.h"

using namespace la::video;

namespace {

// One frame of H x W filled with the RGB colour given in [-1,1].
at::Tensor solid(double r, double g, double b, int64_t h = 2, int64_t w = 4) {
  return at::stack({at::full({1, h, w}, r), at::full({1, h, w}, g), at::full({1, h, w}, b)});
}

}  // namespace

TEST(PixelConvert, RgbTruncatesLikeTheReference) {
  const at::Tensor v = at::tensor({-1.5, -1.0, 0.0, 0.999, 1.0, 3.0}).view({1, 1, 1, 6}).expand({3, 1, 1, 6});
  const at::Tensor px = to_pixels(v.contiguous(), PixelFormat::kRGB).view({6, 3});
  // (x+1)/2*255 truncated: 0, 0, 127 (127.5), 254 (254.87), 255, 255 (clamped)
  const std::vector<int> want = {0, 0, 127, 254, 255, 255};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(px[i][0].item<int>(), want[i]) << i;
}

TEST(PixelConvert, RgbaIsInterleavedWithOpaqueAlpha) {
  const at::Tensor px = to_pixels(solid(1, -1, 0), PixelFormat::kRGBA);
  ASSERT_EQ(px.sizes(), (std::vector<int64_t>{1, 2 * 4 * 4}));
  EXPECT_EQ(px[0][0].item<int>(), 255);
  EXPECT_EQ(px[0][1].item<int>(), 0);
  EXPECT_EQ(px[0][2].item<int>(), 127);
  EXPECT_EQ(px[0][3].item<int>(), 255);
}

TEST(PixelConvert, Bt601LimitedRangeReferenceColours) {
  struct Case { double r, g, b; int y, u, v; };
  // BT.601 limited: white (235,128,128), black (16,128,128), red (81,90,240), green (145,54,34), blue (41,240,110)
  const Case cases[] = {{1, 1, 1, 235, 128, 128}, {-1, -1, -1, 16, 128, 128}, {1, -1, -1, 81, 90, 240},
                        {-1, 1, -1, 145, 54, 34}, {-1, -1, 1, 41, 240, 110}};
  for (const auto& c : cases) {
    const at::Tensor i420 = to_pixels(solid(c.r, c.g, c.b), PixelFormat::kI420)[0];
    ASSERT_EQ(i420.numel(), frame_bytes(PixelFormat::kI420, 4, 2));
    EXPECT_EQ(i420[0].item<int>(), c.y);
    EXPECT_EQ(i420[8].item<int>(), c.u);       // U plane after 8 luma bytes
    EXPECT_EQ(i420[8 + 2].item<int>(), c.v);   // V plane after 2 U bytes
    const at::Tensor nv12 = to_pixels(solid(c.r, c.g, c.b), PixelFormat::kNV12)[0];
    EXPECT_EQ(nv12[8].item<int>(), c.u);
    EXPECT_EQ(nv12[9].item<int>(), c.v);
  }
}

TEST(PixelConvert, Nv12AndI420CarryTheSameSamples) {
  at::manual_seed(1);
  const at::Tensor v = at::rand({3, 2, 8, 16}) * 2 - 1;
  const at::Tensor i420 = to_pixels(v, PixelFormat::kI420), nv12 = to_pixels(v, PixelFormat::kNV12);
  const int64_t luma = 8 * 16, quarter = 4 * 8;
  EXPECT_TRUE(at::equal(i420.slice(1, 0, luma), nv12.slice(1, 0, luma)));
  const at::Tensor uv = nv12.slice(1, luma).view({2, quarter, 2});
  EXPECT_TRUE(at::equal(i420.slice(1, luma, luma + quarter), uv.select(2, 0)));
  EXPECT_TRUE(at::equal(i420.slice(1, luma + quarter), uv.select(2, 1)));
}

TEST(PixelConvert, ChromaIsTheAverageOfFourPixels) {
  // Left column red, right column blue: the one chroma sample is their average.
  at::Tensor v = at::full({3, 1, 2, 2}, -1.0);
  v[0].select(2, 0).fill_(1);  // R in column 0
  v[2].select(2, 1).fill_(1);  // B in column 1
  const at::Tensor i420 = to_pixels(v, PixelFormat::kI420)[0];
  EXPECT_EQ(i420[4].item<int>(), 165);  // (90 + 240)/2
  EXPECT_EQ(i420[5].item<int>(), 175);  // (240 + 110)/2 = 175
}

TEST(PixelConvert, FormatNames) {
  EXPECT_EQ(pixel_format_from_name("NV12"), PixelFormat::kNV12);
  EXPECT_STREQ(pixel_format_name(PixelFormat::kRGBA), "RGBA");
  EXPECT_THROW(pixel_format_from_name("YUY2"), std::invalid_argument);
}

TEST(PixelConvert, PackedPlanesViewEveryByteOnceInPlaneOrder) {
  const int64_t w = 8, h = 4;
  for (PixelFormat f : {PixelFormat::kRGB, PixelFormat::kRGBA, PixelFormat::kI420, PixelFormat::kNV12}) {
    const at::Tensor packed = at::arange(frame_bytes(f, w, h), at::kLong).to(at::kByte);
    const std::vector<at::Tensor> planes = packed_planes(packed, f, w, h);
    ASSERT_EQ(planes.size(), f == PixelFormat::kI420 ? 3u : f == PixelFormat::kNV12 ? 2u : 1u) << pixel_format_name(f);
    std::vector<at::Tensor> flat;
    for (const at::Tensor& p : planes) {
      EXPECT_TRUE(p.is_alias_of(packed)) << pixel_format_name(f);  // views, not copies
      flat.push_back(p.reshape({-1}));
    }
    EXPECT_TRUE(at::equal(at::cat(flat), packed)) << pixel_format_name(f);
  }
  const auto i420 = packed_planes(at::zeros({frame_bytes(PixelFormat::kI420, w, h)}, at::kByte), PixelFormat::kI420, w, h);
  EXPECT_EQ(i420[1].sizes(), at::IntArrayRef({h / 2, w / 2}));
  const auto nv12 = packed_planes(at::zeros({frame_bytes(PixelFormat::kNV12, w, h)}, at::kByte), PixelFormat::kNV12, w, h);
  EXPECT_EQ(nv12[1].sizes(), at::IntArrayRef({h / 2, w}));
  EXPECT_THROW(packed_planes(at::zeros({10}, at::kByte), PixelFormat::kRGB, w, h), std::invalid_argument);
}

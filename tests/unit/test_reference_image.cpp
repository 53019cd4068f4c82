// Output size from image aspect and area (the reference's 64-divisible rule)
// and reference-image preprocessing (resize short side, centre crop with zero
// padding, [-1, 1]).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "engine/video/output_size.h"
#include "engine/video/reference_image.h"

using namespace la;

TEST(OutputSize, ReferenceExamples) {
  // docs of the reference (pipeline.md C.2): 720x400 -> 384x704, portrait -> 704x384, anchor.jpg -> 384x704.
  const int64_t area = video::parse_area("720*400");
  EXPECT_EQ(area, 288000);
  auto s = video::output_size_for_area(400, 720, area);
  EXPECT_EQ(s.height, 384);
  EXPECT_EQ(s.width, 704);
  s = video::output_size_for_area(720, 400, area);
  EXPECT_EQ(s.height, 704);
  EXPECT_EQ(s.width, 384);
  s = video::output_size_for_area(1568, 2720, area);
  EXPECT_EQ(s.height, 384);
  EXPECT_EQ(s.width, 704);
  s = video::output_size_for_area(400, 720, video::parse_area("704*384"));
  EXPECT_EQ(s.height, 384);
  EXPECT_EQ(s.width, 704);
}

TEST(OutputSize, AlwaysMultiplesOf64WithinTheArea) {
  for (int64_t h : {64, 100, 333, 720, 1080, 4000})
    for (int64_t w : {64, 99, 480, 1280, 1920})
      for (const char* size : {"128*128", "256*192", "720*400", "1280*720"}) {
        const int64_t area = video::parse_area(size);
        const auto s = video::output_size_for_area(h, w, area);
        EXPECT_EQ(s.height % 64, 0);
        EXPECT_EQ(s.width % 64, 0);
        EXPECT_LE(s.height * s.width, area) << h << "x" << w << " " << size;
      }
}

TEST(OutputSize, BadAreaStringsAreRefused) {
  for (const char* bad : {"", "720", "720*", "*400", "720*400x", "abc*def", "10*10", "-720*400", "720*400*2"})
    EXPECT_THROW(video::parse_area(bad), std::invalid_argument) << bad;
  EXPECT_EQ(video::parse_area("720x400"), 288000);
}

TEST(ReferenceImage, ResizesCropsAndPadsLikeTheReference) {
  // A 400x720 (h x w) white image into 384x704: resize to 384x691, pad 6 black columns left, 7 right.
  const at::Tensor white = at::full({400, 720, 3}, 255, at::kByte);
  const at::Tensor img = video::prepare_reference_image(white, {384, 704});
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 384, 704}));
  EXPECT_TRUE(at::equal(img.slice(2, 0, 6), at::full({3, 384, 6}, -1.0f)));
  EXPECT_TRUE(at::equal(img.slice(2, 697), at::full({3, 384, 7}, -1.0f)));
  EXPECT_TRUE(at::equal(img.slice(2, 6, 697), at::ones({3, 384, 691})));
}

TEST(ReferenceImage, CentreCropOfALargerImage) {
  // Left half red, right half blue, 200x400 into 128x128: resize to 128x256, crop columns 64..191.
  at::Tensor rgb = at::zeros({200, 400, 3}, at::kByte);
  rgb.slice(1, 0, 200).select(2, 0).fill_(255);
  rgb.slice(1, 200).select(2, 2).fill_(255);
  const at::Tensor img = video::prepare_reference_image(rgb, {128, 128});
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 128, 128}));
  EXPECT_FLOAT_EQ(img[0][64][10].item<float>(), 1.0f);   // red on the left
  EXPECT_FLOAT_EQ(img[2][64][10].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(img[2][64][120].item<float>(), 1.0f);  // blue on the right
  EXPECT_GE(img.min().item<float>(), -1.0f);
  EXPECT_LE(img.max().item<float>(), 1.0f);
}

TEST(ReferenceImage, WrongLayoutIsRefused) {
  EXPECT_THROW(video::prepare_reference_image(at::zeros({10, 10, 4}, at::kByte), {64, 64}), std::invalid_argument);
  EXPECT_THROW(video::prepare_reference_image(at::zeros({10, 10, 3}), {64, 64}), std::invalid_argument);
}

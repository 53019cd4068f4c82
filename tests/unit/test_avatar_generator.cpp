// liveavatargen's generator without GStreamer: offloading the umT5 encoder
// (released after each prompt, reloaded for the next) gives the same latents
// as keeping it, and really lets it go.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "elements/avatar_generator.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"

using namespace la;

TEST(AvatarGenerator, OffloadedTextEncoderGivesTheSameLatentsAndIsReleased) {
  test::TempDir dir;
  ASSERT_EQ(test::make_tiny_checkpoint(dir.path()), 0);
  const auto ck = dir.path() / "Wan2.2-S2V-14B";
  elements::GeneratorModels m;
  m.dit = models::S2vDit::load(ck.string(), (dir.path() / "LiveAvatar" / "liveavatar.safetensors").string(),
                               at::kCPU, at::kFloat);
  m.vae = models::WanVae::load((ck / "Wan2.1_VAE.pth").string(), at::kCPU, at::kFloat);
  m.tokenizer = std::make_shared<const models::Umt5Tokenizer>((ck / "google" / "umt5-xxl").string(),
                                                              m.dit->config().text_len);
  const std::string t5_path = (ck / "models_t5_umt5-xxl-enc-bf16.pth").string();
  int loads = 0;
  std::weak_ptr<const models::Umt5Encoder> last;
  m.load_t5 = [&] {
    ++loads;
    auto t5 = models::Umt5Encoder::load(t5_path, at::kCPU, at::kFloat);
    last = t5;
    return t5;
  };
  elements::GeneratorModels kept = m;
  kept.t5 = m.load_t5();
  loads = 0;

  const at::Tensor rgb = at::randint(0, 256, {96, 128, 3}, at::kByte);
  elements::AvatarGenerator off(m, {64, 64}, {}), on(kept, {64, 64}, {});
  for (auto* g : {&off, &on}) {
    g->set_prompt("a person talking");
    g->set_image(rgb);
  }
  EXPECT_EQ(loads, 1);
  EXPECT_TRUE(last.expired()) << "the offloaded encoder is still held";
  at::manual_seed(4);
  const at::Tensor audio = at::randn({25, 32, 12});
  EXPECT_TRUE(at::equal(off.next_block(audio), on.next_block(audio)));
  off.set_prompt("somebody else");
  on.set_prompt("somebody else");
  EXPECT_EQ(loads, 2);
  EXPECT_TRUE(at::equal(off.next_block(audio), on.next_block(audio)));
}

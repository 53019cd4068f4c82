// Every parity fixture loads, and the model layouts built from each fixture's
// own __metadata__ config produce exactly its key set and shapes: the layouts
// that la-mkcheckpoint writes and the loaders read are the reference's.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "engine/io/json_config.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/weight_store.h"
#include "engine/models/s2v_dit_layout.h"
#include "engine/models/umt5_layout.h"
#include "engine/models/wan_vae_layout.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

using ShapeMap = std::map<std::string, std::vector<int64_t>>;

ShapeMap file_shapes(const std::string& file, const std::string& strip_prefix = "") {
  ShapeMap m;
  const io::SafetensorsFile st(file);
  for (const auto& e : st.entries()) m[strip_prefix + e.name] = e.shape;
  return m;
}

ShapeMap spec_shapes(const std::vector<models::TensorSpec>& specs) {
  ShapeMap m;
  for (const auto& s : specs) m[s.name] = s.shape;
  return m;
}

void expect_same(const ShapeMap& want, const ShapeMap& got) {
  for (const auto& [k, shape] : want) {
    const auto it = got.find(k);
    if (it == got.end()) ADD_FAILURE() << "layout lacks " << k;
    else EXPECT_EQ(it->second, shape) << k;
  }
  for (const auto& [k, shape] : got)
    if (!want.count(k)) ADD_FAILURE() << "layout has extra key " << k;
}

}  // namespace

TEST(ParityFixtures, EveryFixtureFileLoads) {
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(test::parity_dir())) {
    if (e.path().extension() != ".safetensors") continue;
    auto w = io::WeightStore::open(e.path().string());
    EXPECT_GT(w.size(), 0u) << e.path();
    for (const auto& k : w.keys()) EXPECT_TRUE(w.get_unchecked(k).defined()) << k;
    ++files;
  }
  EXPECT_GE(files, 10u) << "fixture directory " << test::parity_dir();
}

TEST(ParityFixtures, VaeLayoutMatchesFixtureKeys) {
  const auto file = test::parity_file("vae_weights.safetensors");
  const auto cfg = models::WanVaeConfig::from_json(test::fixture_config(file));
  expect_same(file_shapes(file), spec_shapes(models::wan_vae_tensor_specs(cfg)));
}

TEST(ParityFixtures, DitLayoutMatchesFixtureKeys) {
  const auto file = test::parity_file("dit_weights.safetensors");
  const auto cfg = models::S2vDitConfig::from_json(test::fixture_config(file));
  expect_same(file_shapes(file), spec_shapes(models::s2v_dit_tensor_specs(cfg)));
}

TEST(ParityFixtures, Umt5LayoutMatchesFixtureKeys) {
  const auto file = test::parity_file("t5_weights.safetensors");
  const auto cfg = models::Umt5Config::from_json(test::fixture_config(file));
  expect_same(file_shapes(file), spec_shapes(models::umt5_tensor_specs(cfg)));
}

TEST(ParityFixtures, AudioEncoderLayoutMatchesFixtureKeys) {
  // The audio fixture holds CausalAudioEncoder alone: its "dim" is the
  // wav2vec2 width (DiT audio_dim) and "out_dim" the DiT width.
  const auto file = test::parity_file("audio_weights.safetensors");
  const auto j = test::fixture_config(file);
  models::S2vDitConfig dit;
  dit.dim = j.get_int("out_dim");
  dit.audio_dim = j.get_int("dim");
  ASSERT_EQ(j.get_int("num_layers"), models::kAudioHiddenStates);
  ShapeMap want;
  const std::string prefix = "casual_audio_encoder.";
  for (const auto& s : models::s2v_dit_tensor_specs(dit))
    if (s.name.rfind(prefix, 0) == 0) want[s.name] = s.shape;
  expect_same(file_shapes(file, prefix), want);
}

// parity-conditioning: the conditioning chain a stream starts from, each
// against an expected value composed independently of the code under test
// from the reference's golden tensors and its formulas written out here:
//
// - encode_reference: the image as one frame -> the sink's reference latent,
//   the image repeated 73 times -> 19 motion latents (reference PT pipeline);
// - encode_prompt_states: cleaned, tokenized, '</s>', padded and masked,
//   umT5-encoded, trimmed to the real tokens;
// - offline_features: wav2vec2 (HF golden hidden states) -> 50->30 Hz linear
//   interpolation -> one 30 Hz frame per 25 fps video frame, zeros past the
//   audio, padded to clips of 48.
//
// Tolerance: the fixtures README's max|d| <= 1e-4 * max(1, max|ref|).
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "engine/audio/audio_features.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/weight_store.h"
#include "engine/models/umt5/encoder.h"
#include "engine/models/umt5/tokenizer.h"
#include "engine/models/wan_vae/wan_vae.h"
#include "engine/models/wav2vec2/wav2vec2.h"
#include "engine/session/conditioning.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"
#include "tests/parity/bf16_figures.h"
#include "tests/parity/compare.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

constexpr double kRel = 1e-4;  // README: max|d| <= 1e-4 * max(1, max|ref|)

// --- The reference's audio formulas, written out (pipeline.md B.5, B.6) -----

// linear_interpolation: F.interpolate(mode='linear', align_corners=True) along
// time, [L,T,C] -> [L,n,C]: output j blends frames floor(s) and floor(s)+1 at
// s = j (T-1)/(n-1). Computed in float64.
at::Tensor interpolate_reference(const at::Tensor& x, int64_t n) {
  const int64_t t = x.size(1);
  const at::Tensor xd = x.to(at::kDouble);
  std::vector<at::Tensor> frames;
  for (int64_t j = 0; j < n; ++j) {
    const double s = n > 1 ? static_cast<double>(j) * static_cast<double>(t - 1) / static_cast<double>(n - 1) : 0.0;
    const auto lo = static_cast<int64_t>(std::floor(s));
    const int64_t hi = std::min(lo + 1, t - 1);
    const double w = s - static_cast<double>(lo);
    frames.push_back(xd.select(1, lo) * (1 - w) + xd.select(1, hi) * w);
  }
  return at::stack(frames, 1).to(at::kFloat);
}

// out_len = int((T50 / 50.0) * 30)
int64_t frames_at_30hz(int64_t t50) { return static_cast<int64_t>(static_cast<double>(t50) / 50.0 * 30.0); }

// get_audio_embed_bucket_fps(fps=25, m=0): min_batch_num = int(N30 / (bf * 1.2)) + 1 clips of bf
// frames; video frame i takes the 30 Hz frame round(1.2 i) (exactly floor(1.2 i + 0.5): the
// fraction of 1.2 i is never .5), or zeros past the audio. [L,N30,C] -> [frames, L, C].
int64_t bucket_count(int64_t n30, int64_t batch_frames) {
  return (static_cast<int64_t>(static_cast<double>(n30) / (static_cast<double>(batch_frames) * 1.2)) + 1) *
         batch_frames;
}
at::Tensor buckets_reference(const at::Tensor& f30, int64_t batch_frames) {
  const int64_t n30 = f30.size(1), n = bucket_count(n30, batch_frames);
  at::Tensor out = at::zeros({n, f30.size(0), f30.size(2)}, f30.options());
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = (12 * i + 5) / 10;
    if (idx < n30) out[i] = f30.select(1, idx);
  }
  return out;
}

// close_rel, with the measured max|d| recorded as figure:conditioning.<key>.max_abs.
::testing::AssertionResult close_recorded(const at::Tensor& got, const at::Tensor& want, const std::string& key) {
  if (got.sizes() == want.sizes())
    test::record_figure("conditioning." + key + ".max_abs",
                        (got.to(at::kDouble) - want.to(at::kDouble)).abs().max().item<double>());
  return test::close_rel(got, want, kRel, key);
}

std::string wav2vec2_dir() {
  const char* src = std::getenv("LA_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/fixtures/wav2vec2";
}

}  // namespace

// The formulas above are the reference's: checked against its own outputs
// (audio_io) and the worked example of pipeline.md B.6.
TEST(Conditioning, WrittenOutAudioFormulasAreTheReferences) {
  const io::SafetensorsFile f(test::parity_file("audio_io.safetensors"));
  const auto io = f.tensors();
  int interps = 0;
  for (int k = 0; io.count("interp" + std::to_string(k) + ".in"); ++k, ++interps) {
    const at::Tensor in = io.at("interp" + std::to_string(k) + ".in"), want = io.at("interp" + std::to_string(k) + ".out");
    EXPECT_EQ(frames_at_30hz(in.size(1)), want.size(1));
    EXPECT_TRUE(close_recorded(interpolate_reference(in, want.size(1)), want, "formula.interp" + std::to_string(k)));
  }
  EXPECT_GE(interps, 1);
  const auto cases = nlohmann::json::parse(f.metadata().at("cases")).at("bucket");
  int buckets = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const auto& c = cases[k];
    if (c.at("m") != 0 || c.at("fps") != 25 || c.at("video_rate") != 30) continue;  // the pipeline's case
    const std::string p = "bucket" + std::to_string(k);
    EXPECT_TRUE(at::equal(buckets_reference(io.at(p + ".audio_feat"), c.at("batch_frames")), io.at(p + ".bucket")))
        << p;
    ++buckets;
  }
  EXPECT_GE(buckets, 1);
  // dwarven_blacksmith: T50 = 885 -> N30 = 531 -> 10 clips, 480 buckets, 0..442 real.
  EXPECT_EQ(frames_at_30hz(885), 531);
  EXPECT_EQ(bucket_count(531, 48), 480);
  EXPECT_EQ((12 * 442 + 5) / 10, 530);
  EXPECT_EQ((12 * 443 + 5) / 10, 532);
}

// offline_features(samples) = buckets(interpolate(wav2vec2 hidden states)), with
// the hidden states from HF transformers (the golden of parity-wav2vec2).
TEST(Conditioning, OfflineFeaturesAreWav2Vec2InterpolatedAndBucketed) {
  const auto w2v = models::Wav2Vec2::load(wav2vec2_dir(), at::kCPU, at::kFloat);
  const auto golden = io::SafetensorsFile(wav2vec2_dir() + "/golden.safetensors").tensors();
  int cases = 0;
  for (int k = 0; golden.count("case" + std::to_string(k) + ".samples"); ++k, ++cases) {
    const std::string p = "case" + std::to_string(k);
    // The golden's signals are normalised as the processor does; given at
    // another level and offset, offline_features' own normalisation must
    // bring them back (to ~1e-7) before wav2vec2.
    const at::Tensor samples = golden.at(p + ".samples")[0] * 0.25 + 0.02;
    const at::Tensor hidden = golden.at(p + ".hidden_states").select(1, 0);  // [25, T50, C]
    const at::Tensor f30 = interpolate_reference(hidden, frames_at_30hz(hidden.size(1)));
    const at::Tensor want = buckets_reference(f30, 48).permute({1, 2, 0});  // [25, C, frames]
    const at::Tensor got = audio::offline_features(*w2v, samples);
    EXPECT_TRUE(close_recorded(got, want, "offline_features." + p));
    // Blocks are consecutive 12-frame slices.
    EXPECT_TRUE(at::equal(audio::offline_block(got, 1), got.slice(2, 12, 24)));
  }
  EXPECT_EQ(cases, 2);
}

// The sink's reference latent is the image encoded as one frame; the motion
// latents are the image repeated 73 times, encoded (19 latents).
TEST(Conditioning, ReferenceLatentsAreTheImageAndItsStaticClip) {
  const std::string weights = test::parity_file("vae_weights.safetensors");
  auto store = io::WeightStore::open(weights);
  const auto vae = models::WanVae::from_store(store, models::WanVaeConfig::from_json(test::fixture_config(weights)),
                                              at::kCPU, at::kFloat);
  const auto io = io::SafetensorsFile(test::parity_file("vae_io.safetensors")).tensors();
  const at::Tensor image = io.at("enc.video")[0].select(1, 0);  // [3, H, W] in [-1, 1]
  // The reference's encoder takes frame 0 alone (causally), so the first latent
  // of its encoding of any video starting with the image is the image's latent.
  const at::Tensor golden0 = io.at("enc.latent")[0].narrow(1, 0, 1);

  const session::ReferenceLatents r = session::encode_reference(*vae, image);
  EXPECT_TRUE(close_recorded(r.ref, golden0, "reference.ref_latent"));
  ASSERT_EQ(r.motion.sizes(), (std::vector<int64_t>{16, 19, image.size(1) / 8, image.size(2) / 8}));
  EXPECT_TRUE(close_recorded(r.motion.narrow(1, 0, 1), golden0, "reference.motion_latent0"));
  // The 73 frames as the reference's encoder consumes them: frame 0, then 18
  // chunks of 4 copies, the causal cache carried between them.
  models::WanVaeEncodeState state;
  const at::Tensor frame = image.unsqueeze(1);
  std::vector<at::Tensor> parts = {vae->stream_encode(state, frame)};
  for (int c = 0; c < 18; ++c) parts.push_back(vae->stream_encode(state, frame.repeat({1, 4, 1, 1})));
  EXPECT_TRUE(close_recorded(r.motion, at::cat(parts, 1), "reference.motion_latents"));
}

// The reference keeps hidden[:L] of the padded (text_len), masked encoding. On
// its golden, that equals the L real tokens encoded alone (pad keys are
// masked and the position bias depends only on distance): the route the
// expected values take below, where the prompt goes through the tiny
// checkpoint's SentencePiece model and umT5.
TEST(Conditioning, PromptStatesAreTheMaskedEncodingOfTheRealTokens) {
  {
    const std::string weights = test::parity_file("t5_weights.safetensors");
    auto store = io::WeightStore::open(weights);
    const auto t5 = models::Umt5Encoder::from_store(store, models::Umt5Config::from_json(test::fixture_config(weights)),
                                                    at::kCPU, at::kFloat);
    const auto io = io::SafetensorsFile(test::parity_file("t5_io.safetensors")).tensors();
    const at::Tensor lens = io.at("seq_lens");
    for (int64_t b = 0; b < lens.size(0); ++b) {
      const int64_t n = lens[b].item<int64_t>();
      EXPECT_TRUE(close_recorded(t5->forward(io.at("ids").slice(0, b, b + 1).narrow(1, 0, n))[0],
                                 io.at("hidden")[b].narrow(0, 0, n), "prompt_golden_sequence" + std::to_string(b)));
    }
  }
  test::TempDir dir;
  ASSERT_EQ(test::make_tiny_checkpoint(dir.path()), 0) << "la-mkcheckpoint ($LA_MKCHECKPOINT)";
  const auto ck = dir.path() / "Wan2.2-S2V-14B";
  const auto t5 = models::Umt5Encoder::load((ck / "models_t5_umt5-xxl-enc-bf16.pth").string(), at::kCPU, at::kFloat);
  constexpr int64_t kTextLen = 32;  // the tiny DiT's text_len
  const models::Umt5Tokenizer tok((ck / "google" / "umt5-xxl").string(), kTextLen);
  constexpr int64_t kEos = 1;  // umT5's '</s>'
  std::string long_prompt = "The avatar speaks";
  for (int i = 0; i < 40; ++i) long_prompt += " word " + std::to_string(i);
  // The prompt as given, and its cleaned text written out (html.unescape twice, whitespace collapsed).
  const std::vector<std::pair<std::string, std::string>> prompts = {
      {"  A dwarven\t blacksmith &amp;amp; his  forge.\n", "A dwarven blacksmith & his forge."},
      {"x", "x"},
      {long_prompt, long_prompt},
  };
  int truncated = 0;
  for (size_t k = 0; k < prompts.size(); ++k) {
    const auto& [prompt, clean] = prompts[k];
    std::vector<int> pieces = tok.encode_clean(clean);
    if (static_cast<int64_t>(pieces.size()) > kTextLen - 1) {
      pieces.resize(kTextLen - 1);  // HF truncation keeps room for '</s>'
      ++truncated;
    }
    std::vector<int64_t> ids(pieces.begin(), pieces.end());
    ids.push_back(kEos);
    const at::Tensor want = t5->forward(at::tensor(ids, at::kLong).view({1, -1}))[0];
    const at::Tensor got = session::encode_prompt_states(*t5, tok, prompt);
    EXPECT_TRUE(close_recorded(got, want, "prompt" + std::to_string(k)));
  }
  EXPECT_EQ(truncated, 1) << "the long prompt must exercise truncation";
}

// parity-dit-bf16: the S2V DiT's bf16 path (how every GPU runs it: bf16 weights and
// storage points with the reference's fp32 islands and float64 RoPE) against
// the same DiT in fp32 on the CPU, on the parity fixture's weights and
// inputs (dit_weights / dit_io): one denoising call (every transformer
// block's output and the velocity; step 1, t = 857.7), then a whole session of 5 blocks across
// two clip boundaries (KV ring wrap, sink refresh). The bf16 side runs on
// $LA_TEST_DEVICE (default cpu). Bounds: 2x the error measured on the CPU
// (docs/dit.md, "bf16 against fp32").
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "engine/io/safetensors_file.h"
#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/session/generation_session.h"
#include "tests/parity/bf16_figures.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

// Bounds (measured on the CPU, x2; see docs/dit.md).
constexpr double kLayerRelL2 = 2 * 5.8e-3, kLayerMaxOverRms = 2 * 3.1e-2;
constexpr double kVelocityRelL2 = 2 * 5.8e-3, kVelocityMaxOverRms = 2 * 2.7e-2;
constexpr double kSessionRelL2 = 2 * 5.1e-3, kSessionMaxOverRms = 2 * 2.9e-2;

struct Models {
  std::shared_ptr<const models::S2vDit> fp32, bf16;
  std::map<std::string, at::Tensor> in;
  nlohmann::json pipeline, calls;
};

const Models& models_once() {
  static const Models m = [] {
    const std::string weights = test::parity_file("dit_weights.safetensors");
    const auto cfg = models::S2vDitConfig::from_json(test::fixture_config(weights));
    const io::SafetensorsFile io_file(test::parity_file("dit_io.safetensors"));
    Models r;
    r.pipeline = nlohmann::json::parse(io_file.metadata().at("pipeline"));
    r.calls = nlohmann::json::parse(io_file.metadata().at("calls"));
    models::S2vDitOptions options;
    options.motion_frames = r.pipeline.at("motion_frames")[0];
    options.motion_latent_frames = r.pipeline.at("motion_frames")[1];
    const auto tensors = io::SafetensorsFile(weights).tensors();
    r.fp32 = models::S2vDit::from_tensors(tensors, cfg, at::kCPU, at::kFloat, options, weights);
    r.bf16 = models::S2vDit::from_tensors(tensors, cfg, test::bf16_test_device(), at::kBFloat16, options, weights);
    r.in = io_file.tensors();
    return r;
  }();
  return m;
}

struct CallResult {
  at::Tensor out;                 // velocity [16, 3, h, w], fp32 on the CPU
  std::vector<at::Tensor> layers;  // every transformer block's output after its audio injection
};

// Sink prefill, then the recorded call of clip 0, block 0, step 1 (t = 857.69,
// a timestep that bf16 cannot hold: 856 in bf16): its KV cache is fresh.
CallResult one_call(const models::S2vDit& dit, const Models& m) {
  const at::Tensor ref = m.in.at("in.ref_latents")[0], motion = m.in.at("in.motion_latents")[0];
  const at::Tensor audio = m.in.at("in.audio_emb")[0];
  const int64_t h = ref.size(2), w = ref.size(3);
  const auto& call = m.calls.at(5);
  EXPECT_EQ(call.at("kind"), "infer");
  EXPECT_EQ(call.at("step"), 1);
  const auto prompt = dit.encode_prompt(m.in.at("in.context"));
  const auto sink = dit.prefill_sink(ref, motion, prompt);
  auto kv = dit.make_kv_cache(m.pipeline.at("kv_cache_len"));
  const auto a = call.at("audio_frames");
  const auto block = dit.condition_block(audio.slice(2, a[0], a[1]), {}, 0, h, w);
  models::DitTrace trace;
  const at::Tensor x = m.in.at("call05.x"), t = m.in.at("call05.t");
  CallResult r;
  r.out = dit.forward(x, t[0][0].item<float>(), block, kv, sink, prompt, 0, call.at("relative_dist").get<int>(),
                      &trace)
              .to(at::kCPU, at::kFloat);
  for (const auto& l : trace.after_audio) r.layers.push_back(l.to(at::kCPU));
  return r;
}

// 5 blocks of 2-block clips: clip boundaries after blocks 1 and 3 (new noise,
// KV ring wrap, the refreshed sink from clip 1 on), the rd draws and noise
// from the session's seed, no pose video (the production path).
std::vector<at::Tensor> session_blocks(const std::shared_ptr<const models::S2vDit>& dit, const Models& m) {
  const at::Tensor ref = m.in.at("in.ref_latents")[0], motion = m.in.at("in.motion_latents")[0];
  const at::Tensor audio = m.in.at("in.audio_emb")[0];
  const int64_t afpb = m.pipeline.at("audio_frames_per_block"), audio_blocks = audio.size(2) / afpb;
  session::SessionOptions o;
  o.blocks_per_clip = m.pipeline.at("num_blocks");
  o.frames_per_block = m.pipeline.at("num_frames_per_block");
  o.seed = 11;
  session::GenerationSession s(dit, ref.size(2), ref.size(3), o);
  s.set_prompt(m.in.at("in.context"));
  s.set_reference(ref, motion);
  std::vector<at::Tensor> out;
  for (int64_t b = 0; b < 5; ++b) {
    const int64_t a0 = (b % audio_blocks) * afpb;
    out.push_back(s.next_block(audio.slice(2, a0, a0 + afpb)).to(at::kCPU, at::kFloat));
  }
  return out;
}

}  // namespace

TEST(DitBf16, OneDenoisingCallStaysNearFp32) {
  const Models& m = models_once();
  EXPECT_EQ(m.bf16->dtype(), at::kBFloat16);
  const CallResult ref = one_call(*m.fp32, m), got = one_call(*m.bf16, m);
  ASSERT_EQ(got.layers.size(), ref.layers.size());
  test::ErrorFigures layers;
  for (size_t l = 0; l < ref.layers.size(); ++l) {
    const auto f = test::error_figures(got.layers[l], ref.layers[l]);
    std::printf("[bf16] transformer block %zu: rel L2 %.3g, max|d|/rms %.3g (rms %.3g)\n", l, f.rel_l2, f.max_over_rms,
                f.rms_ref);
    layers = test::worst(layers, f);
  }
  test::expect_within("dit.bf16.call.block_outputs", layers, kLayerRelL2, kLayerMaxOverRms);
  test::expect_within("dit.bf16.call.velocity", test::error_figures(got.out, ref.out), kVelocityRelL2,
                      kVelocityMaxOverRms);
}

TEST(DitBf16, SessionAcrossClipBoundariesStaysNearFp32) {
  const Models& m = models_once();
  const auto ref = session_blocks(m.fp32, m), got = session_blocks(m.bf16, m);
  test::ErrorFigures all;
  for (size_t b = 0; b < ref.size(); ++b) {
    const auto f = test::error_figures(got[b], ref[b]);
    std::printf("[bf16] session block %zu latents: rel L2 %.3g, max|d|/rms %.3g\n", b, f.rel_l2, f.max_over_rms);
    test::record_figure("dit.bf16.session.block" + std::to_string(b) + ".rel_l2", f.rel_l2);
    EXPECT_LE(f.rel_l2, kSessionRelL2) << "block " << b;
    EXPECT_LE(f.max_over_rms, kSessionMaxOverRms) << "block " << b;
    all = test::worst(all, f);
  }
  test::record_figure("dit.bf16.session.rel_l2", all.rel_l2);
  test::record_figure("dit.bf16.session.max_over_rms", all.max_over_rms);
}

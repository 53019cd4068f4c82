// The S2V DiT against the reference's recorded calls (fixtures dit_io and
// dit_io_fp32norm3): the sink prefill, then every denoising step of every
// block in order, with the caches carrying state across calls (the KV ring
// wraps in clip 1) and the recorded rolling-sink offsets. Built from the
// fixture's own metadata; the fixture dir comes from LIVEAVATAR_PARITY_DIR.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "engine/io/safetensors_file.h"
#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/session/generation_session.h"
#include "tests/common/figure.h"
#include "tests/parity/compare.h"
#include "tests/parity/parity_dir.h"

using namespace la;

namespace {

std::string call_name(int index) {
  char name[16];
  std::snprintf(name, sizeof name, "call%02d", index);
  return name;
}

struct Fixture {
  std::shared_ptr<const models::S2vDit> dit;
  std::map<std::string, at::Tensor> io;  // the replayed file's tensors
  std::map<std::string, at::Tensor> inputs;  // dit_io's (shared inputs live there)
  nlohmann::json calls, pipeline;
};

Fixture load(const std::string& io_file, bool norm3_round_trip) {
  const std::string weights = test::parity_file("dit_weights.safetensors");
  const auto cfg = models::S2vDitConfig::from_json(test::fixture_config(weights));
  Fixture f;
  const io::SafetensorsFile w(weights);
  models::S2vDitOptions options;
  options.norm3_bf16_round_trip = norm3_round_trip;
  const io::SafetensorsFile main(test::parity_file("dit_io.safetensors"));
  f.pipeline = nlohmann::json::parse(main.metadata().at("pipeline"));
  options.motion_frames = f.pipeline.at("motion_frames")[0];
  options.motion_latent_frames = f.pipeline.at("motion_frames")[1];
  f.dit = models::S2vDit::from_tensors(w.tensors(), cfg, at::kCPU, at::kFloat, options, weights);
  f.inputs = main.tensors();
  f.calls = nlohmann::json::parse(main.metadata().at("calls"));
  f.io = io_file == "dit_io.safetensors" ? f.inputs : io::SafetensorsFile(test::parity_file(io_file)).tensors();
  return f;
}

// Replays every call; `check` compares one output (or dump) with its reference.
template <class Check>
int replay(Fixture& f, Check check) {
  auto& dit = *f.dit;
  const at::Tensor ref = f.inputs.at("in.ref_latents")[0], motion = f.inputs.at("in.motion_latents")[0];
  const at::Tensor cond = f.inputs.at("in.cond_latents")[0], audio = f.inputs.at("in.audio_emb")[0];
  const int64_t h = ref.size(2), w = ref.size(3), per_frame = dit.frame_tokens(h, w);
  const auto prompt = dit.encode_prompt(f.inputs.at("in.context"));
  const int64_t kv_len = f.pipeline.at("kv_cache_len");
  std::vector<models::StepKvCache> caches;
  for (int i = 0; i < f.pipeline.at("num_kv_caches").get<int>(); ++i) caches.push_back(dit.make_kv_cache(kv_len));

  models::CondCache sink;
  int checked = 0;
  for (const auto& call : f.calls) {
    const std::string p = call_name(call.at("index"));
    if (call.at("kind") == "sink") {
      // The reference fills one shared cond cache four times with the same result; once is enough.
      if (sink.tokens) continue;
      models::DitTrace trace;
      sink = dit.prefill_sink(ref, motion, prompt, &trace);
      for (size_t l = 0; l < trace.block_out.size(); ++l) {
        const std::string key = p + ".dbg.block" + std::to_string(l) + ".out";
        if (f.io.count(key)) checked += check(trace.block_out[l], f.io.at(key), key);
        const std::string ck = "sink.cond_k.layer" + std::to_string(l), cv = "sink.cond_v.layer" + std::to_string(l);
        if (f.io.count(ck)) checked += check(sink.k[l].unsqueeze(0), f.io.at(ck), ck);
        if (f.io.count(cv)) checked += check(sink.v[l].unsqueeze(0), f.io.at(cv), cv);
      }
      continue;
    }
    const int64_t start = call.at("current_start");
    const auto a = call.at("audio_frames"), c = call.at("cond_frames");
    const auto block = dit.condition_block(audio.slice(2, a[0], a[1]), cond.slice(1, c[0], c[1]), start / per_frame,
                                           h, w);
    models::DitTrace trace;
    const at::Tensor out = dit.forward(f.io.at(p + ".x"), f.io.at(p + ".t")[0][0].item<float>(), block,
                                       caches[call.at("kv_cache").get<int>() - 1], sink, prompt, start,
                                       call.at("relative_dist").get<int>(), &trace);
    checked += check(out.unsqueeze(0), f.io.at(p + ".out"), p + ".out");
    for (size_t l = 0; l < trace.block_out.size(); ++l) {
      const std::string base = p + ".dbg.block" + std::to_string(l);
      if (f.io.count(base + ".out")) checked += check(trace.block_out[l], f.io.at(base + ".out"), base + ".out");
      if (f.io.count(base + ".after_audio"))
        checked += check(trace.after_audio[l], f.io.at(base + ".after_audio"), base + ".after_audio");
    }
  }
  return checked;
}

}  // namespace

TEST(DitParity, EveryCallOfDitIo) {
  Fixture f = load("dit_io.safetensors", true);
  // Tolerances of the fixtures README for dit_io (its bf16 round trip amplifies fp32 noise).
  test::Diff calls, dumps;  // worst of the call outputs, of the layer dumps and sink K/V (docs/dit.md)
  const int checked = replay(f, [&](const at::Tensor& got, const at::Tensor& ref, const std::string& label) {
    EXPECT_TRUE(test::close_stats(got, ref, 5e-3, 1e-3, 1e-5, label));
    const test::Diff d = test::last_diff();
    test::Diff& w = label.rfind("call", 0) == 0 && label.find(".dbg.") == std::string::npos ? calls : dumps;
    w = {std::max(w.max_abs, d.max_abs), std::max(w.p99, d.p99), std::max(w.median, d.median)};
    return 1;
  });
  EXPECT_GE(checked, 16 + 3 * 3 + 24);
  la::test::record_doc_figure("dit.io.calls.max_abs", calls.max_abs);
  la::test::record_doc_figure("dit.io.calls.p99", calls.p99);
  la::test::record_doc_figure("dit.io.calls.median", calls.median);
  la::test::record_doc_figure("dit.io.dumps.max_abs", dumps.max_abs);
}

TEST(DitParity, EveryCallOfDitIoFp32Norm3) {
  Fixture f = load("dit_io_fp32norm3.safetensors", false);
  double calls = 0;
  const int checked = replay(f, [&](const at::Tensor& got, const at::Tensor& ref, const std::string& label) {
    EXPECT_TRUE(test::close_abs(got, ref, 1e-4, label));
    if (label.rfind("call", 0) == 0 && label.find(".dbg.") == std::string::npos)
      calls = std::max(calls, test::last_diff().max_abs);
    return 1;
  });
  EXPECT_GE(checked, 16);
  la::test::record_doc_figure("dit.fp32norm3.calls.max_abs", calls);
}

// The whole denoising loop through a GenerationSession (KV rings, ring wrap,
// block positions, Euler steps) with the fixture's clip noise and rd draws,
// against the reference's finished clips (denoise.clip{r}.output).
namespace {

void replay_session(Fixture& f, double max_abs, double p99, double median, const std::string& figure) {
  const at::Tensor ref = f.inputs.at("in.ref_latents")[0], motion = f.inputs.at("in.motion_latents")[0];
  const at::Tensor cond = f.inputs.at("in.cond_latents")[0], audio = f.inputs.at("in.audio_emb")[0];
  const int64_t blocks = f.pipeline.at("num_blocks"), clips = f.pipeline.at("num_clips");
  const int64_t fpb = f.pipeline.at("num_frames_per_block"), afpb = f.pipeline.at("audio_frames_per_block");
  session::SessionOptions o;
  o.blocks_per_clip = blocks;
  o.frames_per_block = fpb;
  o.refresh_sink_after_first_clip = false;  // the single-GPU harness never refreshes the sink
  session::GenerationSession s(f.dit, ref.size(2), ref.size(3), o);
  s.set_noise_source([&](int64_t clip) { return f.inputs.at("in.noise.clip" + std::to_string(clip)); });
  std::vector<int> rds;
  for (const auto& call : f.calls)
    if (call.at("kind") == "infer") rds.push_back(call.at("relative_dist"));
  size_t next = 0;
  s.set_rd_source([&] { return rds.at(next++); });
  s.set_prompt(f.inputs.at("in.context"));
  s.set_reference(ref, motion);
  test::Diff worst;
  for (int64_t r = 0; r < clips; ++r) {
    const at::Tensor expected = f.io.at("denoise.clip" + std::to_string(r) + ".output");
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t a0 = (r * blocks + b) * afpb;
      const at::Tensor out = s.next_block(audio.slice(2, a0, a0 + afpb), cond.slice(1, b * fpb, (b + 1) * fpb));
      const std::string label = "session clip" + std::to_string(r) + ".block" + std::to_string(b);
      EXPECT_TRUE(test::close_stats(out, expected.slice(1, b * fpb, (b + 1) * fpb), max_abs, p99, median, label));
      worst = {std::max(worst.max_abs, test::last_diff().max_abs), std::max(worst.p99, test::last_diff().p99), 0};
    }
  }
  EXPECT_EQ(next, rds.size());
  la::test::record_doc_figure(figure + ".session.max_abs", worst.max_abs);  // docs/dit.md
  la::test::record_doc_figure(figure + ".session.p99", worst.p99);
}

}  // namespace

TEST(DitParity, SessionReproducesTheDenoisedClips) {
  Fixture f = load("dit_io.safetensors", true);
  replay_session(f, 5e-3, 1e-3, 1e-5, "dit.io");
}

TEST(DitParity, SessionReproducesTheDenoisedClipsFp32Norm3) {
  Fixture f = load("dit_io_fp32norm3.safetensors", false);
  replay_session(f, 1e-4, 1e-4, 1e-4, "dit.fp32norm3");
}

// DitPipeline against GenerationSession on the CPU (fp32): every split and
// stage count gives bit-identical latents over several clips, with prompt and
// image changes at every block position of a clip, resets with blocks in
// flight, and the sink refresh; bad layouts fail with what would fit.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/parallel/dit_pipeline.h"
#include "engine/parallel/nccl_link.h"
#include "engine/parallel/partition.h"
#include "engine/session/generation_session.h"
#include "engine/runtime/cuda_runtime_info.h"
#include "tools/mkcheckpoint/random_weights.h"

using namespace la;

namespace {

constexpr int64_t kH = 8, kW = 12;  // latent size: 64x96 pixels

// The tiny scale's widths with five blocks, so four stages can split them.
models::S2vDitConfig five_block_config() {
  models::S2vDitConfig c;
  c.dim = 64;
  c.ffn_dim = 128;
  c.num_heads = 4;
  c.num_layers = 5;
  c.audio_inject_layers = {0, 2, 4};
  c.freq_dim = 32;
  c.text_dim = 32;
  c.text_len = 32;
  c.audio_dim = 32;
  return c;
}

const std::map<std::string, at::Tensor>& weights() {
  static const auto* w = [] {
    auto* m = new std::map<std::string, at::Tensor>();
    for (const auto& spec : models::s2v_dit_tensor_specs(five_block_config()))
      (*m)[spec.name] = tools::random_tensor(spec, 11, at::kFloat);
    return m;
  }();
  return *w;
}

std::shared_ptr<const models::S2vDit> part(const models::DitLayerRange& range, at::Device device = at::kCPU,
                                           at::ScalarType dtype = at::kFloat) {
  models::S2vDitOptions o;
  o.layers = range;
  return models::S2vDit::from_tensors(weights(), five_block_config(), device, dtype, o, "random");
}

at::Tensor input(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kFloat));
}
at::Tensor prompt(uint64_t seed) { return input({5, 32}, seed); }
at::Tensor ref(uint64_t seed) { return input({16, 1, kH, kW}, seed); }
at::Tensor motion(uint64_t seed) { return input({16, 19, kH, kW}, seed + 1); }
at::Tensor audio(int64_t n) { return input({25, 32, 12}, 1000 + n); }

// A stream as its driver sees it: blocks, prompt and image changes, flushes.
struct Event {
  enum Kind { kBlock, kPrompt, kImage, kReset } kind;
  uint64_t seed = 0;
};
using Script = std::vector<Event>;

Script stream_with_changes_at(int64_t position, int64_t blocks) {
  Script s{{Event::kPrompt, 1}, {Event::kImage, 2}};
  for (int64_t b = 0; b < blocks; ++b) {
    // One change of each kind at `position` (within a clip), and both at block 9.
    if (b == position) s.push_back({Event::kPrompt, 30 + static_cast<uint64_t>(b)});
    if (b == position + 4) s.push_back({Event::kImage, 40 + static_cast<uint64_t>(b)});
    if (b == 9) {
      s.push_back({Event::kPrompt, 50});
      s.push_back({Event::kImage, 51});
    }
    s.push_back({Event::kBlock});
  }
  return s;
}

// Single device: every block's latents.
std::vector<at::Tensor> run_session(const Script& script, session::SessionOptions o, at::Device device = at::kCPU,
                                    at::ScalarType dtype = at::kFloat) {
  session::GenerationSession s(part({}, device, dtype), kH, kW, o);
  std::vector<at::Tensor> out;
  int64_t n = 0;
  for (const Event& e : script) {
    switch (e.kind) {
      case Event::kBlock: out.push_back(s.next_block(audio(n++))); break;
      case Event::kPrompt: s.set_prompt(prompt(e.seed)); break;
      case Event::kImage: s.set_reference(ref(e.seed), motion(e.seed)); break;
      case Event::kReset: s.reset(); break;
    }
  }
  return out;
}

// The pipeline: blocks are submitted as soon as there is room, taken when it
// is full or at the end; a reset drops the blocks in flight (nullopt in the
// result where the session's block was dropped).
// `in`: what the caller does to each input before handing it over (nothing by default).
std::vector<std::optional<at::Tensor>> run_pipeline(const Script& script, parallel::DitSplit split, int64_t stages,
                                                    session::SessionOptions o, at::Device device = at::kCPU,
                                                    at::ScalarType dtype = at::kFloat,
                                                    const std::function<at::Tensor(const at::Tensor&)>& in = {},
                                                    parallel::GpuHandover handover = parallel::GpuHandover::kNccl,
                                                    int64_t* nccl_links = nullptr) {
  auto given = [&](const at::Tensor& t) { return in ? in(t) : t; };
  const auto assignment = parallel::assign_stages(split, stages, five_block_config().num_layers, o.steps);
  std::vector<std::shared_ptr<const models::S2vDit>> parts;
  for (const auto& a : assignment) parts.push_back(part(a.layers, device, dtype));
  parallel::DitPipeline p(parts, assignment, kH, kW, o, handover);
  if (nccl_links) *nccl_links = p.nccl_links();
  std::vector<std::optional<at::Tensor>> out;
  size_t first_pending = 0;
  int64_t n = 0;
  auto take_one = [&] { out[first_pending++] = p.take(); };
  for (const Event& e : script) {
    switch (e.kind) {
      case Event::kBlock:
        if (p.pending() == p.depth()) take_one();
        out.emplace_back();
        p.submit(given(audio(n++)));
        break;
      case Event::kPrompt: p.set_prompt(given(prompt(e.seed))); break;
      case Event::kImage: p.set_reference(given(ref(e.seed)), given(motion(e.seed))); break;
      case Event::kReset:
        p.reset();
        first_pending = out.size();
        break;
    }
  }
  while (p.pending() > 0) take_one();
  return out;
}

// The GPU tests: the pipeline's blocks against the session's, the largest |difference| printed
// (expected 0: the same kernels on the same shapes).
void expect_same_on_gpu(const std::vector<at::Tensor>& want, const std::vector<std::optional<at::Tensor>>& got,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  for (size_t b = 0; b < want.size(); ++b)
    if (got[b]) worst = std::max(worst, (want[b].to(at::kFloat) - got[b]->to(at::kFloat)).abs().max().item<double>());
  std::printf("%s: largest |difference| from one stage %g\n", what.c_str(), worst);
  EXPECT_EQ(worst, 0.0) << what;
}

void expect_identical(const std::vector<at::Tensor>& want, const std::vector<std::optional<at::Tensor>>& got,
                      const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  int64_t compared = 0;
  for (size_t b = 0; b < want.size(); ++b) {
    if (!got[b]) continue;
    ++compared;
    ASSERT_TRUE(at::equal(want[b], *got[b])) << what << ": block " << b << " differs, max |diff| "
                                             << (want[b] - *got[b]).abs().max().item<float>();
  }
  EXPECT_GT(compared, 0) << what;
}

struct Layout {
  parallel::DitSplit split;
  int64_t stages;
};
const Layout kLayouts[] = {{parallel::DitSplit::kSteps, 2},
                           {parallel::DitSplit::kSteps, 4},
                           {parallel::DitSplit::kLayers, 2},
                           {parallel::DitSplit::kLayers, 4},
                           {parallel::DitSplit::kSteps, 3},
                           {parallel::DitSplit::kLayers, 3}};

std::string name(const Layout& l) {
  return std::string(parallel::dit_split_name(l.split)) + " x" + std::to_string(l.stages);
}

}  // namespace

TEST(DitPipeline, ThreeClipsBitIdenticalToOneDeviceForEverySplit) {
  session::SessionOptions o;
  o.seed = 5;
  const Script script = stream_with_changes_at(-10, 13);  // no changes but block 9's: the sink refresh after clip 0
  const auto want = run_session(script, o);
  for (const Layout& l : kLayouts) expect_identical(want, run_pipeline(script, l.split, l.stages, o), name(l));
}

TEST(DitPipeline, PromptAndImageChangesAtEveryBlockPositionBitIdentical) {
  session::SessionOptions o;
  o.seed = 9;
  for (int64_t position = 0; position <= 4; ++position) {
    const Script script = stream_with_changes_at(position, 10);
    const auto want = run_session(script, o);
    for (const Layout& l : {kLayouts[1], kLayouts[3]})
      expect_identical(want, run_pipeline(script, l.split, l.stages, o),
                       name(l) + ", changes at block " + std::to_string(position));
  }
}

TEST(DitPipeline, ResetWithBlocksInFlightBitIdentical) {
  session::SessionOptions o;
  o.seed = 3;
  // A flush after 6 blocks (mid-clip, refresh done), new blocks; another
  // flush right after an image change inside the first clip; a prompt
  // pending across a flush.
  Script s{{Event::kPrompt, 1}, {Event::kImage, 2}};
  for (int i = 0; i < 6; ++i) s.push_back({Event::kBlock});
  s.push_back({Event::kReset});
  for (int i = 0; i < 2; ++i) s.push_back({Event::kBlock});
  s.push_back({Event::kImage, 7});
  s.push_back({Event::kBlock});
  s.push_back({Event::kPrompt, 8});
  s.push_back({Event::kReset});
  for (int i = 0; i < 6; ++i) s.push_back({Event::kBlock});
  const auto want = run_session(s, o);
  for (const Layout& l : kLayouts) expect_identical(want, run_pipeline(s, l.split, l.stages, o), name(l));
}

TEST(DitPipeline, StagesHoldTheirShareOfWeightsAndCaches) {
  const auto whole = part({});
  const auto layout = parallel::assign_stages(parallel::DitSplit::kLayers, 4, 5, 4);
  int64_t sum = 0;
  for (const auto& a : layout) sum += part(a.layers)->weight_bytes();
  EXPECT_EQ(sum, whole->weight_bytes()) << "the stem, blocks, injectors and head are held exactly once";
  EXPECT_EQ(layout[0].layers.end - layout[0].layers.begin, 2);  // 5 blocks over 4: the first gets the extra one

  session::SessionOptions o;
  session::GenerationSession s(whole, kH, kW, o);
  s.set_prompt(prompt(1));
  s.set_reference(ref(2), motion(2));
  s.prepare();
  std::vector<std::shared_ptr<const models::S2vDit>> parts;
  for (const auto& a : layout) parts.push_back(part(a.layers));
  parallel::DitPipeline p(parts, layout, kH, kW, o);
  p.set_prompt(prompt(1));
  p.set_reference(ref(2), motion(2));
  p.submit(audio(0));
  p.take();
  int64_t cached = 0;
  for (int64_t b : p.cache_bytes()) cached += b;
  const int64_t prompt_kv = 5 * 2 * 32 * 64 * 4;  // layers x (K, V) x text_len x dim x fp32
  EXPECT_EQ(cached, s.cache_bytes() + prompt_kv);
  const auto stats = p.stage_stats();
  for (const auto& st : stats) EXPECT_GT(st.items, 0);
}

TEST(DitPipeline, LayoutsThatCannotRunSayWhy) {
  auto error = [](auto f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(error([] { parallel::assign_stages(parallel::DitSplit::kSteps, 5, 40, 4); }).find("at most 4"),
            std::string::npos);
  EXPECT_NE(error([] { parallel::assign_stages(parallel::DitSplit::kLayers, 6, 5, 4); }).find("at most 5"),
            std::string::npos);
  EXPECT_NE(error([] { parallel::parse_dit_split("rows"); }).find("'rows'"), std::string::npos);
  // Parts that do not match their assignment.
  const auto layout = parallel::assign_stages(parallel::DitSplit::kLayers, 2, 5, 4);
  EXPECT_NE(error([&] {
              parallel::DitPipeline p({part({}), part({3, 5})}, layout, kH, kW, {});
            }).find("its assignment says blocks 0..2"),
            std::string::npos);
  EXPECT_NE(error([&] { parallel::DitPipeline p({part(layout[0].layers)}, layout, kH, kW, {}); }).find("one DiT part per stage"),
            std::string::npos);
}

TEST(DitPipeline, BadBlockIsTheCallersErrorAndThePipelineGoesOn) {
  const auto layout = parallel::assign_stages(parallel::DitSplit::kLayers, 2, 5, 4);
  parallel::DitPipeline p({part(layout[0].layers), part(layout[1].layers)}, layout, kH, kW, {});
  EXPECT_THROW(p.submit(audio(0)), std::logic_error);  // no prompt, no image
  p.set_prompt(prompt(1));
  p.set_reference(ref(2), motion(2));
  EXPECT_THROW(p.submit(at::zeros({25, 32, 11})), std::invalid_argument);
  EXPECT_THROW(p.take(), std::logic_error);  // nothing in flight
  p.submit(audio(0));
  EXPECT_EQ(p.take().sizes(), (std::vector<int64_t>{16, 3, kH, kW}));
}

TEST(DitPipeline, GpuHandoverNamesAndNoNcclOnTheCpu) {
  for (auto h : {parallel::GpuHandover::kNccl, parallel::GpuHandover::kCopy, parallel::GpuHandover::kNcclEverywhere})
    EXPECT_EQ(parallel::parse_gpu_handover(parallel::gpu_handover_name(h)), h);
  try {
    parallel::parse_gpu_handover("mpi");
    ADD_FAILURE() << "'mpi' accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'mpi' (expected nccl, copy or nccl-everywhere)"), std::string::npos);
  }
  // Stages on the CPU hand over directly whatever is asked for GPUs: no link, the same bits.
  session::SessionOptions o;
  o.seed = 4;
  const Script script = stream_with_changes_at(1, 5);
  const auto want = run_session(script, o);
  int64_t links = -1;
  expect_identical(want,
                   run_pipeline(script, parallel::DitSplit::kLayers, 2, o, at::kCPU, at::kFloat, {},
                                parallel::GpuHandover::kNcclEverywhere, &links),
                   "layers x2 on the CPU, nccl-everywhere");
  EXPECT_EQ(links, 0);
}

TEST(DitPipelineNccl, LinkJoinsTwoCudaDevicesGivenByIndex) {
  auto refused = [](at::Device a, at::Device b) {
    try {
      parallel::NcclLink link(a, b);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(made)");
  };
  EXPECT_EQ(refused(at::kCPU, at::Device(at::kCUDA, 0)),
            "an NCCL hand-over joins two CUDA devices given by index, not cpu -> cuda:0");
  EXPECT_EQ(refused(at::Device(at::kCUDA), at::Device(at::kCUDA, 1)),
            "an NCCL hand-over joins two CUDA devices given by index, not cuda -> cuda:1");
  const int present = runtime::query_cuda_runtime().device_count;
  EXPECT_EQ(refused(at::Device(at::kCUDA, 0), at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(present))),
            "the hand-over cuda:0 -> cuda:" + std::to_string(present) +
                " names a CUDA device this machine does not have (" + std::to_string(present) + " here)");
}

// On a GPU (bf16, dit-devices=0,0): two stages on one device, each on its own
// stream with events between them, against one stage. The same kernels on
// the same shapes: expected bit-identical; the difference is printed if not.
// Two stages on cuda:0 (steps x2, layers x2) with `handover` against one stage; `links_for(l)`: the
// NCCL links the layout must make.
static void expect_two_stages_on_cuda0_match_one(parallel::GpuHandover handover, const std::string& what,
                                                 const std::function<int64_t(const Layout&)>& links_for) {
  const at::Device gpu(at::kCUDA, 0);
  session::SessionOptions o;
  o.seed = 5;
  const Script script = stream_with_changes_at(2, 10);
  const auto want = run_session(script, o, gpu, at::kBFloat16);
  for (const Layout& l : {kLayouts[0], kLayouts[2]}) {
    int64_t links = -1;
    expect_same_on_gpu(want, run_pipeline(script, l.split, l.stages, o, gpu, at::kBFloat16, {}, handover, &links),
                       name(l) + " on cuda:0" + what);
    EXPECT_EQ(links, links_for(l)) << name(l) << what;
  }
}

TEST(DitPipeline, TwoStagesOnOneGpuMatchOneStage) {
  if (runtime::query_cuda_runtime().device_count == 0) GTEST_SKIP() << "no CUDA device";
  // Stages on one GPU hand over directly: no link.
  expect_two_stages_on_cuda0_match_one(parallel::GpuHandover::kNccl, "", [](const Layout&) { return 0; });
}

// The same with every hand-over over NCCL (a one-rank communicator that sends to itself): the
// code that links stages on different GPUs, on one GPU. (Its own meson test, unit-dit-pipeline-
// nccl, with a shorter time limit: a hang in NCCL stops that test only.)
TEST(DitPipelineNccl, HandOversOnOneGpuMatchOneStage) {
  if (runtime::query_cuda_runtime().device_count == 0) GTEST_SKIP() << "no CUDA device";
  // A link per pair of stages that hand over: steps x2: 0 -> 0 (step 1), 0 -> 1 (step 2),
  // 1 -> 1 (step 3); layers x2: 0 -> 1 along the chain, 1 -> 0 for the next step.
  expect_two_stages_on_cuda0_match_one(parallel::GpuHandover::kNcclEverywhere, ", hand-overs over NCCL",
                                       [](const Layout& l) { return l.split == parallel::DitSplit::kSteps ? 3 : 2; });
}

// Several GPUs: stages on different devices hand over through NCCL (one link per pair of
// stages on different GPUs), against one stage on the first GPU; and with Tensor::to (kCopy). Skipped with
// fewer than two GPUs.
TEST(DitPipelineNccl, StagesOnTwoGpusMatchOneStage) {
  if (runtime::query_cuda_runtime().device_count < 2) GTEST_SKIP() << "fewer than two CUDA devices";
  session::SessionOptions o;
  o.seed = 8;
  const Script script = stream_with_changes_at(1, 9);
  const auto want = run_session(script, o, at::Device(at::kCUDA, 0), at::kBFloat16);
  for (const Layout& l : {kLayouts[0], kLayouts[2]}) {
    for (auto handover : {parallel::GpuHandover::kNccl, parallel::GpuHandover::kCopy}) {
      const auto assignment = parallel::assign_stages(l.split, l.stages, five_block_config().num_layers, o.steps);
      std::vector<std::shared_ptr<const models::S2vDit>> parts;
      for (size_t d = 0; d < assignment.size(); ++d)
        parts.push_back(part(assignment[d].layers, at::Device(at::kCUDA, static_cast<int>(d % 2)), at::kBFloat16));
      parallel::DitPipeline p(parts, assignment, kH, kW, o, handover);
      // steps x2: cuda:0 -> cuda:1 (step 2 after step 1); layers x2: along the chain, and back for
      // the next step.
      const int64_t links = l.split == parallel::DitSplit::kSteps ? 1 : 2;
      EXPECT_EQ(p.nccl_links(), handover == parallel::GpuHandover::kNccl ? links : 0);
      std::vector<std::optional<at::Tensor>> got;
      int64_t n = 0;
      size_t first_pending = 0;
      for (const Event& e : script) {
        switch (e.kind) {
          case Event::kBlock:
            if (p.pending() == p.depth()) got[first_pending++] = p.take().to(at::Device(at::kCUDA, 0));
            got.emplace_back();
            p.submit(audio(n++));
            break;
          case Event::kPrompt: p.set_prompt(prompt(e.seed)); break;
          case Event::kImage: p.set_reference(ref(e.seed), motion(e.seed)); break;
          case Event::kReset: break;
        }
      }
      while (p.pending() > 0) got[first_pending++] = p.take().to(at::Device(at::kCUDA, 0));
      expect_same_on_gpu(want, got, name(l) + " on cuda:0,cuda:1, " + parallel::gpu_handover_name(handover));
    }
  }
}

// On a GPU: inputs the caller writes on its own stream behind long work (as liveavatargen's
// streaming thread does on its stage's stream) are waited for by the stages' streams, which are
// other, non-blocking streams: a stage that read them at once would read memory not yet written.
TEST(DitPipeline, StagesWaitForInputsTheCallersStreamIsStillWriting) {
  if (runtime::query_cuda_runtime().device_count == 0) GTEST_SKIP() << "no CUDA device";
  const at::Device gpu(at::kCUDA, 0);
  session::SessionOptions o;
  o.seed = 6;
  const Script script = stream_with_changes_at(2, 8);
  const auto want = run_session(script, o, gpu, at::kBFloat16);
  auto behind_slow_work = [&](const at::Tensor& t) {
    at::Tensor busy = at::ones({4096, 4096}, at::TensorOptions().device(gpu));
    for (int i = 0; i < 16; ++i) busy = at::mm(busy, busy) / 4096;  // stays all ones; tens of ms
    // Written by a kernel queued after the long work: exactly t, once the stream gets there.
    return t.to(gpu) + busy.sum() * 0;
  };
  const Layout& l = kLayouts[0];
  expect_same_on_gpu(want, run_pipeline(script, l.split, l.stages, o, gpu, at::kBFloat16, behind_slow_work),
                     name(l) + " on cuda:0, inputs behind the caller's long work");
}

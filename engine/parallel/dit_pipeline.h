// One stream's DiT spread over several devices (DESIGN §6): the work of a
// stream is a grid of items (block b, denoising step k), and each pipeline
// stage is a thread that runs its share of them as soon as their inputs are
// ready, so in steady state every stage computes at once (step k of block b
// beside step k-1 of block b+1).
//
//   std::vector<std::shared_ptr<const S2vDit>> parts = ...;  // one per stage, ranges from assign_stages
//   DitPipeline p(parts, assign_stages(DitSplit::kLayers, 2, layers, 4), h, w, {.seed = 7});
//   p.set_prompt(states); p.set_reference(ref, motion);
//   p.submit(audio0); p.submit(audio1);   // returns at once while fewer than depth() blocks are in flight
//   at::Tensor latents0 = p.take();       // blocks come out in order
//
// The result is bit-identical to session::GenerationSession with the same
// options and inputs: the same functions run in the same order on every
// tensor (a chain of DiT parts computes what the whole model does, each
// denoising step has its own KV ring, the noise and rolling-sink offsets are
// drawn per block in block order), and prompt, image, sink refresh and reset
// take effect at the same block boundaries. Per stage the order of items is
// kept by FIFO queues; the prompt's K/V and the sink are versioned per block,
// so blocks still in flight finish with the ones they started with.
//
// Hand-overs: stages on one device pass tensors as they are. Between GPUs the
// activations and latents of every item and of every prompt/sink setup along a
// chain (and, for the steps split, the block's conditioning with the latents)
// go over NCCL, one link per pair of stages (parallel/nccl_link.h);
// GpuHandover::kCopy copies them with Tensor::to instead. The caller's inputs
// and the finished latents are copied with Tensor::to. Each stage thread runs on
// its own stream of its device when the device has streams. Not thread-safe:
// one thread drives a pipeline.
#pragma once

#include <ATen/core/Tensor.h>
#include <atomic>
#include <c10/core/Event.h>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/parallel/partition.h"
#include "engine/sampler/flow_match.h"
#include "engine/session/generation_session.h"

namespace la::parallel {

class DitStage;
class NcclLink;
struct StreamContext;

// How stages on different GPUs hand activations and latents over (stages on the CPU, or on one
// GPU, pass them as they are).
enum class GpuHandover {
  kNccl,            // NCCL send/receive, a communicator per pair of stages (the default)
  kCopy,            // Tensor::to on the consumer's thread (a peer copy)
  kNcclEverywhere,  // NCCL between stages on one GPU too (a one-rank communicator sending to
                    // itself): the NCCL path on a machine with one GPU, for tests and benchmarks
};
// "nccl", "copy", "nccl-everywhere"; std::invalid_argument for anything else.
GpuHandover parse_gpu_handover(const std::string& name);
const char* gpu_handover_name(GpuHandover h);

class DitPipeline {
 public:
  // `parts[d]` holds the blocks of `stages[d].layers` on stage d's device.
  // Throws std::invalid_argument when they do not match or the options are bad.
  DitPipeline(std::vector<std::shared_ptr<const models::S2vDit>> parts, std::vector<StageAssignment> stages,
              int64_t latent_h, int64_t latent_w, session::SessionOptions options = {},
              GpuHandover handover = GpuHandover::kNccl);
  ~DitPipeline();
  DitPipeline(const DitPipeline&) = delete;
  DitPipeline& operator=(const DitPipeline&) = delete;

  // As GenerationSession: take effect at the next submitted block.
  void set_prompt(const at::Tensor& text_states);
  void set_reference(const at::Tensor& ref_latent, const at::Tensor& motion_latents);

  // Queues the next block (audio [25, audio_dim, 12], optional pose). Waits
  // while depth() blocks are being generated. Throws like
  // GenerationSession::next_block, or rethrows a stage's failure.
  void submit(const at::Tensor& audio, const at::Tensor& pose = {});
  // The oldest generated block not yet taken, [16, 3, h, w] on the last
  // stage's device: waits for it; throws std::logic_error when none is in flight.
  at::Tensor take();
  // The oldest block if it is ready, else an undefined tensor.
  at::Tensor try_take();
  // Blocks submitted and not yet taken.
  int64_t pending() const;
  // Blocks generated at once at most: the number of stages (what keeps all busy).
  int64_t depth() const { return depth_; }
  // Starts a new stream: blocks in flight are dropped, position 0, fresh KV
  // rings and RNG, the last given reference.
  void reset();

  int64_t blocks_submitted() const { return block_; }
  int64_t stages() const { return static_cast<int64_t>(stages_.size()); }
  // NCCL links made for the layout, one per pair of stages on different GPUs that hand items
  // over (0 on the CPU, with kCopy, or with every stage on one GPU unless kNcclEverywhere).
  int64_t nccl_links() const { return static_cast<int64_t>(links_.size()); }
  // Bytes of KV rings, sink caches and prompt K/V held by each stage.
  // (Waits for the stages to finish what is queued.)
  std::vector<int64_t> cache_bytes();

  // Test hooks, as GenerationSession's.
  void set_noise_source(std::function<at::Tensor(int64_t clip)> source) { noise_source_ = std::move(source); }
  void set_rd_source(std::function<int()> source) { rd_.set_source(std::move(source)); }
  // Per stage: seconds busy and items run since construction (benchmarks).
  struct StageStats {
    double busy_s = 0;
    int64_t items = 0;
  };
  std::vector<StageStats> stage_stats() const;

 private:
  friend class DitStage;
  struct Finished {
    int64_t block;
    at::Tensor latents;
    std::shared_ptr<c10::Event> ready;  // the last stage's work on them (null on the CPU)
  };
  // Stage threads:
  void finished(int64_t epoch, int64_t block, at::Tensor latents, std::shared_ptr<c10::Event> ready);
  DitStage& head_for_step(int step) const;
  // The NCCL link from stage `from` to stage `to`, or null where they hand over otherwise (as
  // they are on one device, with Tensor::to between GPUs with kCopy).
  NcclLink* link(int from, int to) const;
  void make_links(GpuHandover handover);
  void failed(std::exception_ptr error);                            // stage threads
  void rethrow_failure();
  void new_context(const at::Tensor& text, const at::Tensor& sink_ref);
  void wait_for_first_block();

  // Before stages_: destroyed after the stage threads that use them have stopped.
  // By (from, to) stage: stages that share a pair of GPUs (dit-devices=0,1,0,1) still get a link
  // each, since NCCL runs the operations of one communicator one after another.
  std::map<std::pair<int, int>, std::unique_ptr<NcclLink>> links_;
  std::vector<std::unique_ptr<DitStage>> stages_;
  std::vector<int> chain_heads_;  // stages holding block 0, one per whole-model chain
  std::vector<int> step_heads_;   // per step, the chain head that starts it
  int64_t h_, w_, depth_;
  session::SessionOptions options_;
  sampler::FlowMatchSchedule schedule_;
  std::shared_ptr<const models::S2vDit> stem_;  // stage 0's part: config, noise device

  // Controller state (the driving thread only).
  std::shared_ptr<StreamContext> context_;
  bool has_prompt_ = false;
  at::Tensor ref_latent_, motion_latents_, pending_text_, pending_ref_, pending_motion_, sink_ref_;
  bool refresh_cancelled_ = false;
  int64_t block_ = 0;
  at::Tensor noise_;
  int64_t noise_clip_ = -1;
  session::RdSequence rd_;
  std::function<at::Tensor(int64_t)> noise_source_;

  // Shared with the stage threads.
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::atomic<int64_t> epoch_{0};  // reset() moves on; stages drop older step items
  int64_t submitted_ = 0, generated_ = 0, taken_ = 0;  // this epoch
  std::deque<Finished> done_;
  at::Tensor first_block_frame_;  // block 0's first clean latent frame, this epoch
  std::shared_ptr<c10::Event> first_block_ready_;  // its copy done, on the producing stage's stream
  std::exception_ptr failure_;
};

}  // namespace la::parallel

// One stage of a DitPipeline: a thread with its part of the DiT, the KV rings
// of its blocks for the steps it runs, and its share of every prompt and sink
// version. It runs the items of its queue in order and hands each result to
// the next stage of the chain (or back to the pipeline).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Event.h>
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <thread>
#include <variant>
#include <vector>

#include "engine/models/s2v_dit/s2v_dit.h"
#include "engine/parallel/partition.h"
#include "engine/parallel/stage_stream.h"
#include "engine/parallel/work_queue.h"

namespace la::parallel {

class DitPipeline;

// A prompt and sink version: entry d is what stage d holds of it, written by
// stage d's thread when the version's setup passes it.
struct StreamContext {
  explicit StreamContext(size_t stages) : prompt(stages), sink(stages) {}
  std::vector<models::PromptCache> prompt;
  std::vector<models::CondCache> sink;
};

// What the items of one block share.
struct BlockWork {
  int64_t epoch = 0, block = 0;
  std::shared_ptr<StreamContext> context;
  at::Tensor audio, pose;
  int64_t first_frame = 0, current_start = 0;
  int64_t latent_h = 0, latent_w = 0, frames = 0;
  std::vector<int> rd;                // per step
  models::BlockConditioning condition;  // made by the stage running step 0's stem
};

// Step `step` of a block: `x` its latents at the stage that starts the step;
// `activations` between stages of a chain; `condition` the block's conditioning
// between stages of a chain, and with the latents where they went over NCCL to
// another GPU than step 0's (else the next step's stage reads work->condition).
struct StepItem {
  std::shared_ptr<BlockWork> work;
  int step = 0;
  at::Tensor x;
  bool mid_chain = false;
  models::StepActivations activations;
  models::BlockConditioning condition;  // on the producer's device, or the consumer's after NCCL
  std::shared_ptr<c10::Event> ready;
};

// A new prompt and/or sink version through one chain: `text` the umT5 states
// (undefined: keep `previous`'s prompt), `ref`/`motion` the sink's latents.
struct SetupItem {
  int64_t epoch = 0;
  int64_t first_block = 0;  // the first block that uses it
  std::shared_ptr<StreamContext> context, previous;
  at::Tensor text, ref, motion;
  bool mid_chain = false;
  at::Tensor embedded_text;
  models::SinkActivations activations;
  std::shared_ptr<c10::Event> ready;
};

// Waits for the stage to finish the items ordered before it (and zeroes its
// KV rings when asked: reset()).
struct FenceItem {
  WorkKey after;  // runs once every item of a smaller key has run
  bool clear_kv = false;
  std::shared_ptr<std::promise<void>> passed;
};

class DitStage {
 public:
  DitStage(DitPipeline& pipeline, int index, std::shared_ptr<const models::S2vDit> part, StageAssignment assignment,
           int64_t kv_capacity);
  ~DitStage();  // stops the thread after the items already queued

  // Starts the thread, which makes the KV rings on the stage's stream (so their memory belongs
  // to that stream and their zeroing is ordered before the stage's first step); returns once
  // they exist, rethrowing what the allocation threw (out of memory, say).
  void start(DitStage* next_in_chain);
  void push(StepItem item) {
    const WorkKey key{item.work->epoch, item.work->block, item.step};
    queue_.push(key, std::move(item));
  }
  void push(SetupItem item) {
    const WorkKey key{item.epoch, item.first_block, -1};  // before its first block's step 0
    queue_.push(key, std::move(item));
  }
  void push(FenceItem item) {
    const WorkKey key = item.after;
    queue_.push(key, std::move(item));
  }
  void stop();

  int index() const { return index_; }
  const models::S2vDit& part() const { return *part_; }
  const StageAssignment& assignment() const { return assignment_; }
  bool runs_step(int step) const { return step >= assignment_.first_step && step < assignment_.end_step; }
  int64_t kv_bytes() const;
  double busy_seconds() const { return busy_s_.load(); }
  int64_t items() const { return items_.load(); }

 private:
  void run(std::promise<void>& rings_made);
  void run_step(StepItem& item);
  void run_setup(SetupItem& item);
  // Before pushing `item` to stage `to`: over the NCCL link between the two if there is one (the
  // item's tensors are replaced by their copies on `to`'s GPU), else as they are. Returns the
  // event the consumer's stream waits for.
  std::shared_ptr<c10::Event> hand_over(StepItem& item, const DitStage& to);
  void clear_kv();

  DitPipeline& pipeline_;
  int index_;
  std::shared_ptr<const models::S2vDit> part_;
  StageAssignment assignment_;
  StageStream stream_;
  int intra_op_threads_;
  int64_t kv_capacity_;
  std::vector<models::StepKvCache> kv_;  // one per step it runs
  DitStage* next_ = nullptr;
  WorkQueue<std::variant<StepItem, SetupItem, FenceItem>> queue_;
  std::thread thread_;
  std::atomic<double> busy_s_{0};
  std::atomic<int64_t> items_{0};
};

}  // namespace la::parallel

#include "engine/parallel/dit_stage.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include "engine/parallel/dit_pipeline.h"
#include "engine/parallel/nccl_link.h"
#include "engine/sampler/flow_match.h"

namespace la::parallel {
namespace {

at::Tensor to_here(const at::Tensor& t, at::Device device) { return t.defined() ? t.to(device) : t; }

std::vector<at::Tensor> tensors_of(const models::StepActivations& a) {
  return {a.hidden, a.e0, a.e, a.sink_rope.cos, a.sink_rope.sin};
}
std::vector<at::Tensor> tensors_of(const models::BlockConditioning& c) {
  return {c.audio_global, c.audio_local, c.pose, c.rope.cos, c.rope.sin};
}
std::vector<at::Tensor> tensors_of(const models::SinkActivations& a) {
  return {a.hidden, a.e0, a.rope.cos, a.rope.sin};
}

// What an NCCL link moves of a setup along a chain: the embedded prompt and the sink's activations.
std::vector<at::Tensor*> slots_of(SetupItem& item) {
  auto& a = item.activations;
  return {&item.embedded_text, &a.hidden, &a.e0, &a.rope.cos, &a.rope.sin};
}

// What an NCCL link moves of a step item: its latents, activations and conditioning.
std::vector<at::Tensor*> slots_of(StepItem& item) {
  auto& a = item.activations;
  auto& c = item.condition;
  return {&item.x, &a.hidden, &a.e0, &a.e, &a.sink_rope.cos, &a.sink_rope.sin,
          &c.audio_global, &c.audio_local, &c.pose, &c.rope.cos, &c.rope.sin};
}

}  // namespace

DitStage::DitStage(DitPipeline& pipeline, int index, std::shared_ptr<const models::S2vDit> part,
                   StageAssignment assignment, int64_t kv_capacity)
    : pipeline_(pipeline),
      index_(index),
      part_(std::move(part)),
      assignment_(assignment),
      stream_(part_->device()),
      intra_op_threads_(at::get_num_threads()),
      kv_capacity_(kv_capacity) {}

DitStage::~DitStage() { stop(); }

void DitStage::start(DitStage* next_in_chain) {
  next_ = next_in_chain;
  std::promise<void> rings_made;
  std::future<void> made = rings_made.get_future();
  thread_ = std::thread([this, promise = std::move(rings_made)]() mutable { run(promise); });
  try {
    made.get();
  } catch (...) {
    stop();
    throw;
  }
}

void DitStage::stop() {
  queue_.close();
  if (thread_.joinable()) thread_.join();
}

void DitStage::clear_kv() {
  for (auto& kv : kv_) {
    for (auto& t : kv.k) t.zero_();
    for (auto& t : kv.v) t.zero_();
  }
}

int64_t DitStage::kv_bytes() const {
  int64_t n = 0;
  for (const auto& kv : kv_)
    for (const auto* ts : {&kv.k, &kv.v})
      for (const auto& t : *ts) n += static_cast<int64_t>(t.nbytes());
  return n;
}

void DitStage::run(std::promise<void>& rings_made) {
  // The caller's intra-op thread count, not the OpenMP default of a new
  // thread: CPU reductions split by thread count, and the pipeline must be
  // bit-identical to the single-device session.
  at::set_num_threads(intra_op_threads_);
  c10::InferenceMode inference;
  const auto device_guard = stream_.enter();
  try {
    for (int k = assignment_.first_step; k < assignment_.end_step; ++k)
      kv_.push_back(part_->make_kv_cache(kv_capacity_));
    rings_made.set_value();
  } catch (...) {
    kv_.clear();
    rings_made.set_exception(std::current_exception());
    return;
  }
  while (auto item = queue_.pop()) {
    if (auto* fence = std::get_if<FenceItem>(&*item)) {
      try {
        if (fence->clear_kv) clear_kv();
        fence->passed->set_value();
      } catch (...) {
        fence->passed->set_exception(std::current_exception());
      }
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    try {
      if (auto* step = std::get_if<StepItem>(&*item)) {
        if (step->work->epoch != pipeline_.epoch_.load()) continue;  // dropped by reset()
        run_step(*step);
      } else {
        run_setup(std::get<SetupItem>(*item));  // never dropped: the next epoch may use its version
      }
    } catch (...) {
      pipeline_.failed(std::current_exception());
    }
    busy_s_ = busy_s_.load() + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++items_;
  }
}

void DitStage::run_step(StepItem& item) {
  BlockWork& work = *item.work;
  const at::Device device = part_->device();
  const int k = item.step;
  const models::CondCache& sink = work.context->sink[index_];
  const models::PromptCache& prompt = work.context->prompt[index_];
  std::vector<at::Tensor> handed = tensors_of(item.activations);
  handed.push_back(item.x);
  if (k == 0 && !item.mid_chain) {  // the caller's inputs of the block
    handed.push_back(work.audio);
    handed.push_back(work.pose);
  }
  stream_.wait(item.ready, handed);

  models::StepActivations a;
  models::BlockConditioning condition;
  if (!item.mid_chain) {
    // The first stage of a chain: the block's conditioning (once per block,
    // by the stage running step 0) and the step's input embedding.
    if (k == 0) work.condition = part_->condition_block(work.audio, work.pose, work.first_frame, work.latent_h,
                                                       work.latent_w, work.frames);
    // Made by step 0's stage, maybe on another GPU: ordered before this item by the events
    // between them; its memory must outlive the copy here. Over NCCL it came with the item.
    const models::BlockConditioning& made = item.condition.audio_global.defined() ? item.condition : work.condition;
    stream_.wait(nullptr, tensors_of(made));
    condition = models::to_device(made, device);
    a = part_->step_input(to_here(item.x, device), pipeline_.schedule_.timesteps[k], condition, sink,
                          work.current_start, work.rd[k]);
  } else {
    stream_.wait(nullptr, tensors_of(item.condition));
    condition = models::to_device(item.condition, device);
    a = models::to_device(item.activations, device);
  }
  part_->step_layers(a, condition, kv_[k - assignment_.first_step], sink, prompt);

  if (!part_->has_head()) {
    // The pose tokens are the stem's input only: a later stage never reads
    // them, and copying the expanded bias to another device would materialise it.
    condition.pose = at::Tensor();
    StepItem next{item.work, k, item.x, true, std::move(a), std::move(condition), nullptr};
    next.ready = hand_over(next, *next_);
    next_->push(std::move(next));
    return;
  }
  const at::Tensor v = part_->step_output(a);
  const at::Tensor x = sampler::euler_step(to_here(item.x, device), v, pipeline_.schedule_.sigmas[k],
                                           pipeline_.schedule_.sigmas[k + 1]);
  if (k + 1 < static_cast<int>(pipeline_.schedule_.timesteps.size())) {
    DitStage& to = pipeline_.head_for_step(k + 1);
    StepItem next{item.work, k + 1, x, false, {}, {}, nullptr};
    // To a stage other than step 0's (the steps split), this stage's copy of the block's
    // conditioning goes with the latents, over NCCL or on this device, rather than the next stage
    // copying it from step 0's GPU; unless the copy lacks the pose tokens (it ends a chain: only
    // stems read them). Between GPUs without a link (kCopy) the next stage copies it itself.
    const bool same_device = to.part().device() == device;
    if (to.index() != pipeline_.head_for_step(0).index() && (same_device || pipeline_.link(index_, to.index())) &&
        condition.pose.defined() == work.condition.pose.defined())
      next.condition = condition;
    next.ready = hand_over(next, to);
    to.push(std::move(next));
  } else {
    pipeline_.finished(work.epoch, work.block, x, stream_.record());
  }
}

std::shared_ptr<c10::Event> DitStage::hand_over(StepItem& item, const DitStage& to) {
  NcclLink* link = pipeline_.link(index_, to.index());
  if (!link) return stream_.record();
  return link->transfer(slots_of(item));  // on this thread, whose current stream is the stage's
}

void DitStage::run_setup(SetupItem& item) {
  const at::Device device = part_->device();
  StreamContext& ctx = *item.context;
  std::vector<at::Tensor> handed = tensors_of(item.activations);
  for (const at::Tensor& t : {item.embedded_text, item.text, item.ref, item.motion}) handed.push_back(t);
  stream_.wait(item.ready, handed);
  if (!item.mid_chain) {
    if (item.text.defined()) item.embedded_text = part_->embed_prompt(item.text);
    item.activations = part_->sink_input(item.ref, item.motion);
  } else {
    item.embedded_text = to_here(item.embedded_text, device);
    item.activations = models::to_device(item.activations, device);
  }
  ctx.prompt[index_] = item.embedded_text.defined() ? part_->prompt_layers(item.embedded_text)
                                                    : item.previous->prompt[index_];
  part_->prefill_layers(item.activations, ctx.prompt[index_], ctx.sink[index_]);
  if (next_) {
    item.mid_chain = true;
    NcclLink* link = pipeline_.link(index_, next_->index());
    item.ready = link ? link->transfer(slots_of(item)) : stream_.record();
    next_->push(std::move(item));
  }
}

}  // namespace la::parallel

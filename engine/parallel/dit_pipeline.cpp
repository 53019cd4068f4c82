#include "engine/parallel/dit_pipeline.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <future>
#include <cstdint>
#include <stdexcept>

#include "engine/io/tensor_view.h"
#include "engine/parallel/dit_stage.h"
#include "engine/parallel/nccl_link.h"

namespace la::parallel {
namespace {

std::string range_text(int64_t begin, int64_t end) {
  return "blocks " + std::to_string(begin) + ".." + std::to_string(end - 1);
}

}  // namespace

GpuHandover parse_gpu_handover(const std::string& name) {
  if (name == "nccl") return GpuHandover::kNccl;
  if (name == "copy") return GpuHandover::kCopy;
  if (name == "nccl-everywhere") return GpuHandover::kNcclEverywhere;
  throw std::invalid_argument("unknown GPU hand-over '" + name + "' (expected nccl, copy or nccl-everywhere)");
}

const char* gpu_handover_name(GpuHandover h) {
  switch (h) {
    case GpuHandover::kNccl: return "nccl";
    case GpuHandover::kCopy: return "copy";
    case GpuHandover::kNcclEverywhere: return "nccl-everywhere";
  }
  return "?";
}

DitPipeline::DitPipeline(std::vector<std::shared_ptr<const models::S2vDit>> parts, std::vector<StageAssignment> stages,
                         int64_t latent_h, int64_t latent_w, session::SessionOptions options, GpuHandover handover)
    : h_(latent_h), w_(latent_w), depth_(static_cast<int64_t>(parts.size())), options_(options), rd_(options) {
  if (parts.empty() || parts.size() != stages.size())
    throw std::invalid_argument("a DiT pipeline needs one DiT part per stage: got " + std::to_string(parts.size()) +
                                " parts for " + std::to_string(stages.size()) + " stages");
  for (const auto& p : parts)
    if (!p) throw std::invalid_argument("a DiT pipeline stage has no DiT part");
  stem_ = parts.front();
  const models::S2vDitConfig& cfg = stem_->config();
  session::check_session_options(options_, h_, w_);
  schedule_ = sampler::flow_match_schedule(options_.steps);

  // Every stage must hold what its assignment says, and the chains (stages
  // from block 0 to the head, consecutive) must cover every step exactly once.
  for (size_t d = 0; d < parts.size(); ++d) {
    const auto& p = *parts[d];
    const auto& a = stages[d];
    if (p.config().dim != cfg.dim || p.config().num_layers != cfg.num_layers || p.dtype() != stem_->dtype())
      throw std::invalid_argument("stage " + std::to_string(d) + "'s DiT part is not of the same model as stage 0's");
    if (p.layer_begin() != a.layers.begin || p.layer_end() != a.layers.end_of(cfg))
      throw std::invalid_argument("stage " + std::to_string(d) + " holds " + range_text(p.layer_begin(), p.layer_end()) +
                                  ", its assignment says " + range_text(a.layers.begin, a.layers.end_of(cfg)));
  }
  step_heads_.assign(options_.steps, -1);
  for (size_t d = 0; d < parts.size();) {
    if (!parts[d]->has_stem())
      throw std::invalid_argument("stage " + std::to_string(d) + " starts a chain but does not hold block 0");
    size_t e = d;
    while (!parts[e]->has_head()) {
      if (e + 1 == parts.size() || parts[e + 1]->layer_begin() != parts[e]->layer_end() ||
          stages[e + 1].first_step != stages[d].first_step || stages[e + 1].end_step != stages[d].end_step)
        throw std::invalid_argument("stage " + std::to_string(e) + " (" +
                                    range_text(parts[e]->layer_begin(), parts[e]->layer_end()) +
                                    ") is not followed by the next blocks for the same steps");
      ++e;
    }
    if (stages[d].first_step < 0 || stages[d].end_step > options_.steps || stages[d].first_step >= stages[d].end_step)
      throw std::invalid_argument("stage " + std::to_string(d) + " runs steps outside 0.." +
                                  std::to_string(options_.steps - 1));
    for (int k = stages[d].first_step; k < stages[d].end_step; ++k) {
      if (step_heads_[k] >= 0) throw std::invalid_argument("step " + std::to_string(k) + " is run by two chains");
      step_heads_[k] = static_cast<int>(d);
    }
    chain_heads_.push_back(static_cast<int>(d));
    d = e + 1;
  }
  for (int k = 0; k < options_.steps; ++k)
    if (step_heads_[k] < 0) throw std::invalid_argument("no stage runs step " + std::to_string(k));

  const int64_t capacity = options_.frames_per_block * stem_->frame_tokens(h_, w_) * options_.blocks_per_clip;
  for (size_t d = 0; d < parts.size(); ++d)
    stages_.push_back(std::make_unique<DitStage>(*this, static_cast<int>(d), parts[d], stages[d], capacity));
  make_links(handover);
  for (size_t d = 0; d < stages_.size(); ++d)
    stages_[d]->start(parts[d]->has_head() ? nullptr : stages_[d + 1].get());
}

void DitPipeline::make_links(GpuHandover handover) {
  if (handover == GpuHandover::kCopy) return;
  auto need = [&](const DitStage& from, const DitStage& to) {
    const at::Device a = from.part().device(), b = to.part().device();
    if (!a.is_cuda() || !b.is_cuda() || (a == b && handover != GpuHandover::kNcclEverywhere)) return;
    auto& link = links_[{from.index(), to.index()}];
    if (!link) link = std::make_unique<NcclLink>(a, b);
  };
  // Every hand-over of an item: along a chain, and from the stage that ends a step to the one
  // that starts the next (the same chain's head in the layers split, the next chain's in steps).
  for (size_t d = 0; d < stages_.size(); ++d) {
    const DitStage& s = *stages_[d];
    if (!s.part().has_head()) {
      need(s, *stages_[d + 1]);
      continue;
    }
    for (int k = s.assignment().first_step; k < s.assignment().end_step; ++k)
      if (k + 1 < options_.steps) need(s, head_for_step(k + 1));
  }
}

NcclLink* DitPipeline::link(int from, int to) const {
  const auto it = links_.find({from, to});
  return it == links_.end() ? nullptr : it->second.get();
}

DitPipeline::~DitPipeline() {
  ++epoch_;  // what is queued is dropped, not computed
  for (auto& s : stages_) s->stop();
}

DitStage& DitPipeline::head_for_step(int step) const { return *stages_[step_heads_[step]]; }

void DitPipeline::set_prompt(const at::Tensor& text_states) {
  session::check_prompt_states(stem_->config(), text_states);
  pending_text_ = text_states;
}

void DitPipeline::set_reference(const at::Tensor& ref_latent, const at::Tensor& motion_latents) {
  session::check_reference(stem_->config().in_dim, h_, w_, ref_latent, motion_latents);
  pending_ref_ = ref_latent;
  pending_motion_ = motion_latents;
}

void DitPipeline::rethrow_failure() {
  std::lock_guard<std::mutex> g(m_);
  if (failure_) std::rethrow_exception(failure_);
}

void DitPipeline::failed(std::exception_ptr error) {
  {
    std::lock_guard<std::mutex> g(m_);
    if (!failure_) failure_ = error;
  }
  cv_.notify_all();
}

void DitPipeline::finished(int64_t epoch, int64_t block, at::Tensor latents, std::shared_ptr<c10::Event> ready) {
  {
    std::lock_guard<std::mutex> g(m_);
    if (epoch != epoch_.load()) return;
    // GenerationSession keeps block 0's first clean frame for the sink refresh.
    if (block == 0 && options_.refresh_sink_after_first_clip) {
      first_block_frame_ = latents.narrow(1, 0, 1).clone();  // on the calling stage's stream
      first_block_ready_ = record_on_current_stream(first_block_frame_.device());
    }
    ++generated_;
    done_.push_back({block, std::move(latents), std::move(ready)});
  }
  cv_.notify_all();
}

void DitPipeline::wait_for_first_block() {
  std::unique_lock<std::mutex> g(m_);
  cv_.wait(g, [&] { return failure_ || first_block_frame_.defined(); });
  if (failure_) std::rethrow_exception(failure_);
}

void DitPipeline::new_context(const at::Tensor& text, const at::Tensor& sink_ref) {
  auto context = std::make_shared<StreamContext>(stages_.size());
  for (int head : chain_heads_) {
    SetupItem s;
    s.epoch = epoch_.load();
    s.first_block = block_;
    s.context = context;
    s.previous = context_;
    s.text = text;
    s.ref = sink_ref;
    s.motion = motion_latents_;
    s.ready = record_on_current_stream(stem_->device());  // the caller made text, ref, motion there
    stages_[head]->push(std::move(s));
  }
  context_ = std::move(context);
  sink_ref_ = sink_ref;
}

void DitPipeline::submit(const at::Tensor& audio, const at::Tensor& pose) {
  const auto& cfg = stem_->config();
  const int64_t f = options_.frames_per_block;
  // What condition_block would refuse on a stage thread, refused here, so a
  // bad block is the caller's error and the pipeline stays usable.
  if (!audio.defined() || audio.dim() != 3 || audio.size(0) != models::kAudioHiddenStates ||
      audio.size(1) != cfg.audio_dim || audio.size(2) != 4 * f)
    throw std::invalid_argument("audio block must be [" + std::to_string(models::kAudioHiddenStates) + ", " +
                                std::to_string(cfg.audio_dim) + ", " + std::to_string(4 * f) +
                                "] (hidden states, wav2vec2 width, video frames), got " +
                                (audio.defined() ? io::shape_string(audio.sizes()) : std::string("nothing")));
  if (pose.defined() && (pose.dim() != 4 || pose.size(0) != cfg.cond_dim || pose.size(1) != f ||
                         pose.size(2) != h_ || pose.size(3) != w_))
    throw std::invalid_argument("pose latents must be [" + std::to_string(cfg.cond_dim) + ", " + std::to_string(f) +
                                ", " + std::to_string(h_) + ", " + std::to_string(w_) + "], got " +
                                io::shape_string(pose.sizes()));
  if (!(has_prompt_ || pending_text_.defined()) || !(ref_latent_.defined() || pending_ref_.defined()))
    throw std::logic_error("generation needs a prompt and a reference image before the first block");
  rethrow_failure();
  {
    std::unique_lock<std::mutex> g(m_);
    cv_.wait(g, [&] { return failure_ || submitted_ - generated_ < depth_; });
    if (failure_) std::rethrow_exception(failure_);
  }
  c10::InferenceMode guard;
  const int64_t b = block_;
  // The changes GenerationSession makes between block b-1 and block b, in its order.
  bool refresh = options_.refresh_sink_after_first_clip && b == options_.blocks_per_clip && !refresh_cancelled_;
  at::Tensor text;
  bool changed = false;
  if (pending_text_.defined()) {
    text = pending_text_;
    pending_text_.reset();
    has_prompt_ = true;
    changed = true;
  }
  if (pending_ref_.defined()) {
    ref_latent_ = pending_ref_;
    motion_latents_ = pending_motion_;
    pending_ref_.reset();
    pending_motion_.reset();
    sink_ref_ = ref_latent_;
    // Inside the first clip a new image cancels the refresh due at its end;
    // at its end it replaces the refreshed sink.
    if (b >= 1 && b < options_.blocks_per_clip) refresh_cancelled_ = true;
    refresh = false;
    changed = true;
  }
  if (refresh) {
    wait_for_first_block();
    std::lock_guard<std::mutex> g(m_);
    sink_ref_ = first_block_frame_;
    // Cloned on the last stage's stream: this thread's stream on the stem's device waits for it
    // (on the device), and the setups below wait for that stream.
    if (first_block_ready_)
      first_block_ready_->block(c10::impl::VirtualGuardImpl(stem_->device().type()).getStream(stem_->device()));
    changed = true;
  }
  if (changed) new_context(text, sink_ref_);

  const int64_t clip = b / options_.blocks_per_clip, in_clip = b % options_.blocks_per_clip;
  if (clip != noise_clip_) {
    noise_ = session::clip_noise(noise_source_, options_.seed, clip, cfg.out_dim, f * options_.blocks_per_clip, h_, w_,
                                 stem_->device(), stem_->dtype());
    noise_clip_ = clip;
  }
  auto work = std::make_shared<BlockWork>();
  work->epoch = epoch_.load();
  work->block = b;
  work->context = context_;
  // On the stem's device, so that one event of this thread's stream there covers every input
  // of step 0 (a copy from another GPU is ordered before that stream's later work by PyTorch).
  work->audio = audio.device() == stem_->device() ? audio : audio.to(stem_->device());
  work->pose = !pose.defined() || pose.device() == stem_->device() ? pose : pose.to(stem_->device());
  work->first_frame = options_.first_frame + b * f;
  work->current_start = work->first_frame * stem_->frame_tokens(h_, w_);
  work->latent_h = h_;
  work->latent_w = w_;
  work->frames = f;
  for (int k = 0; k < options_.steps; ++k) work->rd.push_back(rd_.next());
  {
    std::lock_guard<std::mutex> g(m_);
    ++submitted_;
  }
  head_for_step(0).push(StepItem{work, 0, noise_.narrow(1, in_clip * f, f), false, {}, {},
                                 record_on_current_stream(stem_->device())});
  ++block_;
}

int64_t DitPipeline::pending() const {
  std::lock_guard<std::mutex> g(m_);
  return submitted_ - taken_;
}

at::Tensor DitPipeline::take() {
  std::unique_lock<std::mutex> g(m_);
  if (submitted_ == taken_) throw std::logic_error("DitPipeline::take with no block in flight");
  cv_.wait(g, [&] { return failure_ || !done_.empty(); });
  if (done_.empty()) std::rethrow_exception(failure_);
  Finished f = std::move(done_.front());
  done_.pop_front();
  ++taken_;
  g.unlock();
  if (f.ready) {
    f.ready->synchronize();  // the last stage's stream has written them
    // From now on the caller's stream reads them: the allocator must not give their memory back
    // to the last stage's stream (which allocated it) before that work is done.
    used_by_current_stream(f.latents);
  }
  return f.latents;
}

at::Tensor DitPipeline::try_take() {
  {
    std::lock_guard<std::mutex> g(m_);
    if (failure_ && done_.empty()) std::rethrow_exception(failure_);
    if (done_.empty()) return {};
  }
  return take();
}

void DitPipeline::reset() {
  {
    std::lock_guard<std::mutex> g(m_);
    ++epoch_;
    submitted_ = generated_ = taken_ = 0;
    done_.clear();
    first_block_frame_.reset();
    first_block_ready_.reset();
  }
  // Past every stage's fence nothing of the old epoch runs any more, and the rings are zero.
  std::vector<std::future<void>> fences;
  for (auto& s : stages_) {
    auto passed = std::make_shared<std::promise<void>>();
    fences.push_back(passed->get_future());
    // After every item of the old epoch (its setups run, its steps are dropped).
    s->push(FenceItem{WorkKey{epoch_.load(), INT64_MIN, 0}, true, passed});
  }
  for (auto& f : fences) f.get();
  block_ = 0;
  noise_clip_ = -1;
  noise_.reset();
  rd_.restart();
  refresh_cancelled_ = false;
  // The new stream's sink starts from the image again (not from a refreshed frame).
  if (sink_ref_.defined() && !sink_ref_.is_same(ref_latent_) && has_prompt_) new_context({}, ref_latent_);
}

std::vector<int64_t> DitPipeline::cache_bytes() {
  std::vector<std::future<void>> fences;
  for (auto& s : stages_) {
    auto passed = std::make_shared<std::promise<void>>();
    fences.push_back(passed->get_future());
    s->push(FenceItem{WorkKey{INT64_MAX, 0, 0}, false, passed});  // after everything queued
  }
  for (auto& f : fences) f.get();
  std::vector<int64_t> bytes;
  for (size_t d = 0; d < stages_.size(); ++d) {
    int64_t n = stages_[d]->kv_bytes();
    if (context_) {
      for (const auto* ts : {&context_->sink[d].k, &context_->sink[d].v})
        for (const auto& t : *ts) n += static_cast<int64_t>(t.nbytes());
      for (const auto& l : context_->prompt[d].layers) n += static_cast<int64_t>(l.k.nbytes() + l.v.nbytes());
    }
    bytes.push_back(n);
  }
  return bytes;
}

std::vector<DitPipeline::StageStats> DitPipeline::stage_stats() const {
  std::vector<StageStats> out;
  for (const auto& s : stages_) out.push_back({s->busy_seconds(), s->items()});
  return out;
}

}  // namespace la::parallel

#include "tools/miniature/training.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <numeric>
#include <random>

#include "engine/sampler/flow_match.h"
#include "tools/miniature/adam.h"

namespace la::miniature {
namespace {

// Linear warm-up over the first 5 % of the steps, then a cosine down to 10 %.
double lr_scale(int step, int steps) {
  const int warm = std::max(1, steps / 20);
  if (step < warm) return static_cast<double>(step + 1) / warm;
  const double p = static_cast<double>(step - warm) / std::max(1, steps - warm);
  return 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * p));
}

class Progress {
 public:
  Progress(const char* what, int steps) : what_(what), steps_(steps), start_(std::chrono::steady_clock::now()) {}
  void add(int step, double loss) {
    recent_.push_back(loss);
    if (recent_.size() > 50) recent_.pop_front();
    if ((step + 1) % 100 == 0 || step + 1 == steps_)
      std::printf("%s step %d/%d  loss %.5f  %.0f s\n", what_, step + 1, steps_, mean(), seconds());
    std::fflush(stdout);
  }
  double mean() const { return std::accumulate(recent_.begin(), recent_.end(), 0.0) / std::max<size_t>(1, recent_.size()); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  const char* what_;
  int steps_;
  std::chrono::steady_clock::time_point start_;
  std::deque<double> recent_;
};

// 1 everywhere, 5 on the mouth and chin, which the lip-sync measurement reads.
at::Tensor mouth_weight(int64_t size) {
  at::Tensor w = at::ones({1, 1, size, size});
  const double px = size / 128.0;
  w.narrow(2, static_cast<int64_t>(74 * px), static_cast<int64_t>(32 * px))
      .narrow(3, static_cast<int64_t>(50 * px), static_cast<int64_t>(28 * px))
      .fill_(5.0);
  return w;
}

}  // namespace

double train_vae(const models::WanVae& vae, const std::vector<at::Tensor>& params,
                 const std::vector<TrainingClip>& clips, const TrainingRun& run) {
  std::mt19937_64 rng(run.seed);
  Adam adam(params, run.lr);
  Progress progress("vae", run.steps);
  const at::Tensor weight = mouth_weight(run.size);
  // Windows of 1 + 4 frames (the causal VAE's lone first frame and one latent
  // frame of 4 after it). Two steps in three see a random half-size square on
  // the 8-pixel grid (the convolutions learn the same local patterns at a
  // quarter of the cost); every third step the whole frame, because the
  // VAE's middle attention spans the whole latent grid and borders only
  // exist at the frame's edges: trained on crops alone, it deforms whole frames.
  constexpr int64_t kWindow = 5;
  for (int step = 0; step < run.steps; ++step) {
    const TrainingClip& clip = clips[rng() % clips.size()];
    const int64_t first = static_cast<int64_t>(rng() % (clip.poses.size() - kWindow + 1));
    const int64_t crop = step % 3 == 2 ? run.size : run.size / 2;
    const int64_t y0 = 8 * static_cast<int64_t>(rng() % ((run.size - crop) / 8 + 1));
    const int64_t x0 = 8 * static_cast<int64_t>(rng() % ((run.size - crop) / 8 + 1));
    const at::Tensor video = clip_video(clip, first, kWindow, run.size).narrow(2, y0, crop).narrow(3, x0, crop);
    const at::Tensor z = vae.encode(video);
    const at::Tensor recon = vae.decode(z);
    const at::Tensor w = weight.narrow(2, y0, crop).narrow(3, x0, crop);
    const at::Tensor rec_loss = (at::square(recon - video) * w).mean();
    const at::Tensor scale_loss = at::square(z.square().mean() - 1.0);
    const at::Tensor loss = rec_loss + 0.01 * scale_loss;
    adam.zero_grad();
    loss.backward();
    adam.step(lr_scale(step, run.steps));
    progress.add(step, rec_loss.item<double>());
  }
  return progress.mean();
}

double train_dit(const models::S2vDit& dit, const std::vector<at::Tensor>& params,
                 const std::vector<TrainingClip>& clips, const DitInputs& in, const TrainingRun& run) {
  std::mt19937_64 rng(run.seed);
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(run.seed);
  Adam adam(params, run.lr);
  Progress progress("dit", run.steps);
  double by_step[4] = {0, 0, 0, 0};  // loss per sampler step over the last 100 training steps
  int count_by_step[4] = {0, 0, 0, 0};
  const auto schedule = sampler::flow_match_schedule(4);
  constexpr int64_t kBlocksPerClip = 4;  // the session's KV window and sink refresh
  for (int step = 0; step < run.steps; ++step) {
    const TrainingClip& clip = clips[rng() % clips.size()];
    const int64_t blocks = std::min<int64_t>(in.blocks_per_sequence, clip.blocks);
    const int64_t start = static_cast<int64_t>(rng() % (clip.blocks - blocks + 1));
    // laaudiofeat's default (streaming, also the live path) 7 times in 10, offline 3.
    const bool streaming = rng() % 10 < 7;
    const int k = static_cast<int>(rng() % 4);
    const float sigma = schedule.sigmas[k], t = schedule.timesteps[k];
    const int64_t f = kLatentFramesPerBlock, h = clip.latents.size(2), w = clip.latents.size(3);
    const at::Tensor x0 = clip.latents.narrow(1, start * f, blocks * f);
    const at::Tensor noise = at::randn(x0.sizes(), gen);
    const at::Tensor xt = x0 * (1 - sigma) + noise * sigma;
    const at::Tensor target = noise - x0;

    const models::PromptCache prompt = dit.encode_prompt(in.prompt_states);
    models::CondCache sink = dit.prefill_sink(in.reference.ref, in.reference.motion, prompt);
    models::StepKvCache kv = dit.make_kv_cache(kBlocksPerClip * f * dit.frame_tokens(h, w));
    at::Tensor loss = at::zeros({});
    for (int64_t b = 0; b < blocks; ++b) {
      const auto& features = streaming ? clip.streaming_features : clip.offline_features;
      const models::BlockConditioning cond = dit.condition_block(features[start + b], {}, b * f, h, w, f);
      const int rd = 4 + static_cast<int>(rng() % 27);
      const at::Tensor v = dit.forward(xt.narrow(1, b * f, f), t, cond, kv, sink, prompt,
                                       b * f * dit.frame_tokens(h, w), rd);
      loss = loss + at::square(v.to(at::kFloat) - target.narrow(1, b * f, f)).mean();
      // The session's refresh: after the first clip the sink holds block 0's
      // first frame (here its clean latent, what the sampler converges to).
      if (b + 1 == kBlocksPerClip) sink = dit.prefill_sink(x0.narrow(1, 0, 1), in.reference.motion, prompt);
    }
    // The last step (sigma 0.009) asks for the noise in an almost clean
    // sample: its error stays near 1 and its gradient is mostly noise, while
    // the sampler moves the latents by sigma times its output. A tenth of the
    // weight keeps it trained without drowning the other steps.
    const double weight = k == 3 ? 0.1 : 1.0;
    loss = loss * weight / static_cast<double>(blocks);
    adam.zero_grad();
    loss.backward();
    adam.step(lr_scale(step, run.steps));
    const double unweighted = loss.item<double>() / weight;
    by_step[k] += unweighted;
    ++count_by_step[k];
    progress.add(step, unweighted);
    if ((step + 1) % 100 == 0) {
      std::printf("    by sampler step (sigma %.3f %.3f %.3f %.3f): %.4f %.4f %.4f %.4f\n", schedule.sigmas[0],
                  schedule.sigmas[1], schedule.sigmas[2], schedule.sigmas[3], by_step[0] / std::max(1, count_by_step[0]),
                  by_step[1] / std::max(1, count_by_step[1]), by_step[2] / std::max(1, count_by_step[2]),
                  by_step[3] / std::max(1, count_by_step[3]));
      for (int i = 0; i < 4; ++i) by_step[i] = 0, count_by_step[i] = 0;
    }
  }
  return progress.mean();
}

}  // namespace la::miniature

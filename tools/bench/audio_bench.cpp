// la-bench-audio: real-time factor of the offline and streaming audio feature
// modes, per-block compute time of streaming, and the deviation of streaming
// from offline over a grid of context and lookahead, on a 16 kHz mono WAV.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/audio/audio_features.h"
#include "engine/io/weight_store.h"
#include "tools/bench/wav_reader.h"
#include "tools/common/args.h"
#include "tools/mkcheckpoint/random_weights.h"
#include "tools/mkcheckpoint/scales.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::shared_ptr<const la::models::Wav2Vec2> random_model(const std::string& scale_name) {
  const auto scale = la::tools::scale_by_name(scale_name);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& spec : la::models::wav2vec2_tensor_specs(scale.wav2vec2))
    tensors[spec.name] = la::tools::random_tensor(spec, 1, at::kFloat);
  la::io::WeightStore store;
  store.add_tensors("random " + scale_name + " wav2vec2", tensors);
  return la::models::Wav2Vec2::from_store(store, scale.wav2vec2, at::kCPU, at::kFloat);
}

std::vector<at::Tensor> stream(const std::shared_ptr<const la::models::Wav2Vec2>& m, const at::Tensor& x,
                               double context, double lookahead, double* max_block_ms) {
  la::audio::StreamingFeatures s(m, context, lookahead);
  std::vector<at::Tensor> blocks;
  const float* p = x.data_ptr<float>();
  const int64_t chunk = la::audio::kSamplesPerBlock / 4;  // 120 ms of audio per push
  for (int64_t at_sample = 0; at_sample < x.size(0); at_sample += chunk) {
    const auto t0 = Clock::now();
    auto ready = s.push(p + at_sample, static_cast<size_t>(std::min(chunk, x.size(0) - at_sample)));
    if (!ready.empty() && max_block_ms) *max_block_ms = std::max(*max_block_ms, 1000 * seconds_since(t0) / ready.size());
    for (auto& b : ready) blocks.push_back(b);
  }
  for (auto& b : s.finish()) blocks.push_back(b);
  return blocks;
}

struct Options {
  std::string wav, model_dir, scale = "tiny";
};

void usage(FILE* f) {
  std::fprintf(f, "usage: la-bench-audio --wav SPEECH_16K_MONO.wav [--wav2vec2 DIR | --scale tiny|full]\n");
}

Options parse(int argc, char** argv) {
  Options o;
  la::tools::Args args(argc, argv);
  while (args.next()) {
    if (args.flag() == "--wav") o.wav = args.value();
    else if (args.flag() == "--wav2vec2") o.model_dir = args.value();
    else if (args.flag() == "--scale") o.scale = args.value();
    else args.unknown();
  }
  if (o.wav.empty()) throw la::tools::UsageError("--wav is required");
  return o;
}

int run(const Options& o) {
  const auto samples = la::tools::read_wav_16k_mono(o.wav);
  const at::Tensor x = at::from_blob(const_cast<float*>(samples.data()), {static_cast<int64_t>(samples.size())}, at::kFloat).clone();
  const double duration = static_cast<double>(x.size(0)) / la::audio::kSampleRate;
  const auto m = o.model_dir.empty() ? random_model(o.scale)
                                     : la::models::Wav2Vec2::load(o.model_dir, at::kCPU, at::kFloat);
  std::printf("%.2f s of audio, wav2vec2 hidden %lld x %lld layers (%s), %d threads\n", duration,
              (long long)m->config().hidden_size, (long long)m->config().num_hidden_layers,
              o.model_dir.empty() ? ("random " + o.scale).c_str() : o.model_dir.c_str(), at::get_num_threads());

  auto t0 = Clock::now();
  const at::Tensor emb = la::audio::offline_features(*m, x);
  const double offline_s = seconds_since(t0);
  std::printf("offline: %.3f s, real-time factor %.3f\n", offline_s, offline_s / duration);

  double max_ms = 0;
  t0 = Clock::now();
  const auto blocks = stream(m, x, 2.0, 0.16, &max_ms);
  const double stream_s = seconds_since(t0);
  std::printf("streaming (context 2 s, lookahead 0.16 s): %.3f s, real-time factor %.3f, %zu blocks, "
              "slowest block %.1f ms, latency 0.48 s + lookahead + compute\n",
              stream_s, stream_s / duration, blocks.size(), max_ms);

  std::printf("\nrelative L2 error of streaming vs offline features (all 25 layers, all blocks)\n");
  const double lookaheads[] = {0.0, 0.16, 0.32, 0.48, 0.96};
  std::printf("%-12s", "context \\ la");
  for (double la : lookaheads) std::printf("%10.2f s", la);
  std::printf("\n");
  for (double context : {0.0, 0.5, 1.0, 2.0, 4.0, 8.0}) {
    std::printf("%10.1f s", context);
    for (double la : lookaheads) {
      const auto got = stream(m, x, context, la, nullptr);
      std::vector<at::Tensor> want;
      for (size_t b = 0; b < got.size(); ++b) want.push_back(la::audio::offline_block(emb, static_cast<int64_t>(b)));
      const at::Tensor g = at::cat(got, 2), w = at::cat(want, 2);
      std::printf("%12.4f", ((g - w).norm() / w.norm()).item<double>());
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return la::tools::run_tool("la-bench-audio", argc, argv, usage, [&] { return run(parse(argc, argv)); });
}

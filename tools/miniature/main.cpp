// la-train-miniature: trains the miniature LiveAvatar (DESIGN §9) on the CPU
// and writes it in the release layout. See docs/miniature.md.
//
//   la-mkcheckpoint --scale miniature --seed 42 --out /tmp/init
//   la-train-miniature --init /tmp/init --out models/miniature
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/io/json_config.h"
#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/models/s2v_dit_layout.h"
#include "engine/models/umt5/encoder.h"
#include "engine/models/umt5/tokenizer.h"
#include "engine/models/wan_vae_layout.h"
#include "engine/session/conditioning.h"
#include "engine/video/reference_image.h"
#include "tools/common/args.h"
#include "tools/miniature/corpus.h"
#include "tools/miniature/gst_media.h"
#include "tools/miniature/release_writer.h"
#include "tools/miniature/training.h"

namespace fs = std::filesystem;
using namespace la;

namespace {

struct Options {
  std::string init, out;
  std::string prompt = "A person talking to the camera";
  int64_t size = 128;
  // About 28 minutes on 2 cores (docs/miniature.md).
  int clips = 16;
  int vae_steps = 1600, dit_steps = 3000;  // 0: keep --init's weights (e.g. to train only the DiT further)
  double dit_lr = 2e-3;
  uint64_t seed = 7;
  int threads = 0;  // 0: ATen's default
};

void usage(FILE* f) {
  std::fprintf(f,
               "usage: la-train-miniature --init DIR --out DIR [--size N] [--clips N] [--vae-steps N]\n"
               "                          [--dit-steps N] [--dit-lr X] [--seed N] [--threads N] [--prompt TEXT]\n"
               "Trains the miniature's VAE and DiT on a synthetic talking face (espeak-ng speech, a drawn\n"
               "face whose mouth follows the loudness) through the engine's forward code, starting from\n"
               "the checkpoint in --init (la-mkcheckpoint --scale miniature), and writes the release\n"
               "layout to --out. Same options and thread count: the same weights. --vae-steps 0 or\n"
               "--dit-steps 0 keeps that model as --init has it (--init may be a trained miniature).\n");
}

Options parse(int argc, char** argv) {
  Options o;
  tools::Args args(argc, argv);
  while (args.next()) {
    const std::string& a = args.flag();
    if (a == "--init") o.init = args.value();
    else if (a == "--out") o.out = args.value();
    else if (a == "--size") o.size = args.int64_value();
    else if (a == "--clips") o.clips = args.int_value();
    else if (a == "--vae-steps") o.vae_steps = args.int_value();
    else if (a == "--dit-steps") o.dit_steps = args.int_value();
    else if (a == "--seed") o.seed = args.uint64_value();
    else if (a == "--dit-lr") o.dit_lr = args.double_value();
    else if (a == "--threads") o.threads = args.int_value();
    else if (a == "--prompt") o.prompt = args.value();
    else args.unknown();
  }
  if (o.init.empty() || o.out.empty()) throw la::tools::UsageError("--init and --out are required");
  if (o.size < 64 || o.size % 16) throw la::tools::UsageError("--size must be a multiple of 16, at least 64");
  if (o.clips < 1 || o.vae_steps < 0 || o.dit_steps < 0)
    throw la::tools::UsageError("--clips must be positive and the steps not negative");
  return o;
}

// The tensors of a checkpoint file as trainable leaves.
std::map<std::string, at::Tensor> trainable(io::WeightStore& store, const std::vector<models::TensorSpec>& specs,
                                            std::vector<at::Tensor>& params) {
  std::map<std::string, at::Tensor> out;
  for (const auto& s : specs) {
    at::Tensor t = store.get(s.name, s.shape).to(at::kFloat).clone().requires_grad_(true);
    params.push_back(t);
    out[s.name] = t;
  }
  return out;
}

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void run(const Options& o) {
  if (o.threads > 0) at::set_num_threads(o.threads);
  const auto t0 = std::chrono::steady_clock::now();
  const fs::path base = fs::path(o.init) / "Wan2.2-S2V-14B";
  auto wav2vec2 = models::Wav2Vec2::load((base / "wav2vec2-large-xlsr-53-english").string(), at::kCPU, at::kFloat);
  std::printf("corpus: %d clips of 3 sentences...\n", o.clips);
  std::fflush(stdout);
  std::vector<miniature::TrainingClip> clips = miniature::make_corpus(wav2vec2, o.seed, o.clips, 3, false);
  int64_t blocks = 0;
  for (const auto& c : clips) blocks += c.blocks;
  const double corpus_s = since(t0);
  std::printf("corpus: %lld blocks (%.1f s of speech) in %.0f s\n", static_cast<long long>(blocks), blocks * 0.48,
              corpus_s);

  // The VAE.
  auto vae_store = io::WeightStore::open((base / "Wan2.1_VAE.pth").string());
  const models::WanVaeConfig vae_cfg = models::infer_wan_vae_config(vae_store);
  std::vector<at::Tensor> vae_params;
  const auto vae_tensors = trainable(vae_store, models::wan_vae_tensor_specs(vae_cfg), vae_params);
  io::WeightStore vae_trainable;
  vae_trainable.add_tensors("the miniature's VAE", vae_tensors);
  const auto vae = models::WanVae::from_store(vae_trainable, vae_cfg, at::kCPU, at::kFloat, true);
  const auto t_vae = std::chrono::steady_clock::now();
  const double vae_loss =
      o.vae_steps ? miniature::train_vae(*vae, vae_params, clips, {o.vae_steps, 2e-3, o.size, o.seed}) : 0.0;
  const double vae_s = since(t_vae);
  for (auto& c : clips) miniature::encode_latents(*vae, c, o.size);

  // What the DiT is conditioned on, computed as the elements do.
  miniature::DitInputs in;
  {
    c10::InferenceMode guard;
    const models::Umt5Tokenizer tokenizer((base / "google" / "umt5-xxl").string(), 32);
    auto t5 = models::Umt5Encoder::load((base / "models_t5_umt5-xxl-enc-bf16.pth").string(), at::kCPU, at::kFloat);
    in.prompt_states = session::encode_prompt_states(*t5, tokenizer, o.prompt);
    const at::Tensor image = video::prepare_reference_image(miniature::reference_image_rgb(o.size), {o.size, o.size});
    in.reference = session::encode_reference(*vae, image);
  }
  in.prompt_states = in.prompt_states.clone();  // out of inference mode, so autograd may save them
  in.reference.ref = in.reference.ref.clone();
  in.reference.motion = in.reference.motion.clone();

  // The DiT.
  const models::S2vDitConfig dit_cfg = models::S2vDitConfig::from_json(io::JsonConfig::load((base / "config.json").string()));
  auto dit_store = io::WeightStore::open(base.string());
  std::vector<at::Tensor> dit_params;
  const auto dit_tensors = trainable(dit_store, models::s2v_dit_tensor_specs(dit_cfg), dit_params);
  models::S2vDitOptions dit_options;
  dit_options.record_autograd = true;
  const auto dit = models::S2vDit::from_tensors(dit_tensors, dit_cfg, at::kCPU, at::kFloat, dit_options,
                                                "the miniature's DiT");
  const auto t_dit = std::chrono::steady_clock::now();
  const double dit_loss =
      o.dit_steps ? miniature::train_dit(*dit, dit_params, clips, in, {o.dit_steps, o.dit_lr, o.size, o.seed}) : 0.0;
  const double dit_s = since(t_dit);

  const nlohmann::ordered_json notes = {
      {"trained_by", "la-train-miniature"},
      {"size", o.size},
      {"clips", o.clips},
      {"speech_seconds", blocks * 0.48},
      {"seed", o.seed},
      {"threads", at::get_num_threads()},
      {"vae_steps", o.vae_steps},
      {"vae_final_loss", vae_loss},
      {"vae_seconds", vae_s},
      {"dit_steps", o.dit_steps},
      {"dit_final_loss", dit_loss},
      {"dit_seconds", dit_s},
      {"total_seconds", since(t0)},
      {"prompt", o.prompt}};
  miniature::write_release(o.init, o.out, vae_tensors, dit_tensors, notes.dump(2));
  // The reference image the face was trained with, for the demo and the tests.
  miniature::write_png((fs::path(o.out) / "face.png").string(), miniature::reference_image_rgb(o.size));
  std::printf("wrote the miniature to %s: VAE loss %.5f (%.0f s), DiT loss %.5f (%.0f s), %.0f s in all\n",
              o.out.c_str(), vae_loss, vae_s, dit_loss, dit_s, since(t0));
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  return la::tools::run_tool("la-train-miniature", argc, argv, usage, [&] {
    run(parse(argc, argv));
    return 0;
  });
}

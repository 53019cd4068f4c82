// la-plan: what each device of a multi-device DiT pipeline will allocate,
// from the config alone (engine/parallel/memory_plan.h, docs/planner.md).
//
//   la-plan --checkpoint-dir ckpt --size 704*384 --devices 4x24 --vae-device none
#include <cstdio>
#include <exception>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/io/json_config.h"
#include "engine/io/weight_store.h"
#include "engine/models/infer_config.h"
#include "engine/parallel/memory_plan.h"
#include "tools/common/args.h"

namespace {

namespace fs = std::filesystem;
using la::parallel::PlanRequest;

void usage(FILE* out) {
  std::fprintf(out,
               "usage: la-plan [--checkpoint-dir DIR] [--size W*H] [--steps N] [--devices 24,24,... | NxGIB]\n"
               "               [--split auto|steps|layers] [--fp8] [--vae-device K|none] [--audio-device K|none]\n"
               "               [--offload] [--tflops T] [--reserve GIB] [--dtype bfloat16|float16|float32]\n"
               "  DIR: the Wan2.2-S2V-14B directory, or one holding it (default: the release's 14B config);\n"
               "       the encoders' shapes are read from its files\n"
               "  --size: the output's width*height, multiples of 16 (default 704*384: what liveavatargen's\n"
               "          default size=720*400, an area, gives a 16:9 picture)\n"
               "  --devices: capacity of each device in GiB (default 1x80)\n"
               "  --vae-device: the VAE decoder's device (default none: not counted)\n"
               "  --audio-device: laaudiofeat's wav2vec2 (default: the VAE's device, else device 0, as\n"
               "                  liveavatarbin places it)\n");
}

std::string shown(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f", v);
  return text;
}

// A number in (0, max]: larger ones would overflow the plan's sums (or its int fields) and print
// nonsense as if it fitted.
double number(const std::string& flag, const std::string& text, double max) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !(v > 0) || !(v <= max))
    throw la::tools::UsageError(flag + " needs a positive number up to " + shown(max) + ", got '" +
                                text + "'");
  return v;
}

int64_t integer(const std::string& flag, const std::string& text, int64_t max) {
  const double v = number(flag, text, static_cast<double>(max));
  if (v != static_cast<double>(static_cast<int64_t>(v))) throw la::tools::UsageError(flag + " needs a whole number, got '" + text + "'");
  return static_cast<int64_t>(v);
}

constexpr int64_t kMaxDevices = 64;
constexpr double kMaxDeviceGib = 100000;

double device_gib(const std::string& text) {
  const double g = number("--devices", text, kMaxDeviceGib);
  if (g < 0.01) throw la::tools::UsageError("--devices needs at least 0.01 GiB per device, got '" + text + "'");
  return g;
}

// "24,24,24,24" or "4x24".
std::vector<double> parse_devices(const std::string& text) {
  std::vector<double> out;
  if (const size_t x = text.find('x'); x != std::string::npos) {
    const int64_t n = integer("--devices", text.substr(0, x), kMaxDevices);
    const double g = device_gib(text.substr(x + 1));
    out.assign(static_cast<size_t>(n), g);
    return out;
  }
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    out.push_back(device_gib(text.substr(start, comma - start)));
    if (static_cast<int64_t>(out.size()) > kMaxDevices)
      throw la::tools::UsageError("--devices lists more than " + std::to_string(kMaxDevices) + " devices");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// A device index K, or "none" (-1).
int device_index(const std::string& flag, const std::string& text) {
  if (text == "none") return -1;
  return static_cast<int>(text == "0" ? 0 : integer(flag, text, kMaxDevices - 1));
}

void parse_size(const std::string& text, PlanRequest& r) {
  const size_t star = text.find('*');
  if (star == std::string::npos) throw la::tools::UsageError("--size must be W*H, got '" + text + "'");
  r.width = integer("--size", text.substr(0, star), 16384);
  r.height = integer("--size", text.substr(star + 1), 16384);
}

// The DiT's config.json in DIR or DIR/Wan2.2-S2V-14B; the encoders' configs read back from their
// files' tensor shapes (headers only, nothing is loaded) where the directory has them, the
// release's otherwise. Returns what was read, for the first line of the output.
std::string read_checkpoint(const std::string& dir, PlanRequest& r) {
  fs::path root;
  for (const fs::path& d : {fs::path(dir), fs::path(dir) / "Wan2.2-S2V-14B"})
    if (fs::exists(d / "config.json")) {
      root = d;
      break;
    }
  if (root.empty())
    throw la::tools::UsageError("--checkpoint-dir " + dir + " has neither config.json nor Wan2.2-S2V-14B/config.json");
  r.cfg = la::models::S2vDitConfig::from_json(la::io::JsonConfig::load((root / "config.json").string()));
  std::string read = "checkpoint " + root.string() + ": DiT config.json", release;
  auto note = [&](bool found, const char* what) { (found ? read : release) += std::string(", ") + what; };
  const fs::path t5 = root / "models_t5_umt5-xxl-enc-bf16.pth", vae = root / "Wan2.1_VAE.pth",
                 w2v = root / "wav2vec2-large-xlsr-53-english" / "config.json";
  if (fs::exists(t5)) r.t5 = la::models::infer_umt5_config(la::io::WeightStore::open(t5.string()));
  note(fs::exists(t5), "umT5");
  if (fs::exists(vae)) r.vae = la::models::infer_wan_vae_config(la::io::WeightStore::open(vae.string()));
  note(fs::exists(vae), "VAE");
  if (fs::exists(w2v)) r.wav2vec2 = la::models::Wav2Vec2Config::from_json(la::io::JsonConfig::load(w2v.string()));
  note(fs::exists(w2v), "wav2vec2");
  return read + (release.empty() ? "" : "; the release's" + release.substr(1) + " (not in the directory)");
}

}  // namespace

int main(int argc, char** argv) {
  if (la::tools::asks_for_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  PlanRequest r;
  r.device_gib = {80};
  std::string vae = "none", audio, checkpoint;
  try {
    la::tools::Args args(argc, argv);
    while (args.next()) {
      const std::string& f = args.flag();
      if (f == "--checkpoint-dir") checkpoint = read_checkpoint(args.value(), r);
      else if (f == "--size") parse_size(args.value(), r);
      else if (f == "--steps") r.steps = static_cast<int>(integer(f, args.value(), 1000));
      else if (f == "--devices") r.device_gib = parse_devices(args.value());
      else if (f == "--split") r.split = la::parallel::parse_dit_split(args.value());
      else if (f == "--fp8") r.fp8 = true;
      else if (f == "--vae-device") vae = args.value();
      else if (f == "--audio-device") audio = args.value();
      else if (f == "--offload") r.offload = true;
      else if (f == "--tflops") r.tflops = number(f, args.value(), 1e6);
      else if (f == "--reserve") {
        const std::string v = args.value();
        r.reserve_gib = v == "0" ? 0.0 : number(f, v, kMaxDeviceGib);
      } else if (f == "--dtype") {
        const std::string v = args.value();
        if (v == "bfloat16") r.dtype = at::kBFloat16;
        else if (v == "float16") r.dtype = at::kHalf;
        else if (v == "float32") r.dtype = at::kFloat;
        else throw la::tools::UsageError("--dtype must be bfloat16, float16 or float32, got '" + v + "'");
      } else {
        args.unknown();
      }
    }
    r.vae_device = device_index("--vae-device", vae);
    // liveavatarbin's layout: laaudiofeat on cuda-device-id, the VAE decoder's device.
    r.audio_device = audio.empty() ? std::max(r.vae_device, 0) : device_index("--audio-device", audio);
    const la::parallel::MemoryPlan plan = la::parallel::plan_memory(r);
    if (!checkpoint.empty()) std::printf("%s\n", checkpoint.c_str());
    if (!plan.fits) std::printf("%s\n", la::parallel::plan_suggestion(plan).c_str());
    std::printf("%s\n", la::parallel::format_plan(plan).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "la-plan: %s\n", e.what());
    usage(stderr);
    return 2;
  }
}

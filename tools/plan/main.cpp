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
#include "engine/parallel/memory_plan.h"
#include "tools/common/args.h"

namespace {

namespace fs = std::filesystem;
using la::parallel::PlanRequest;

void usage() {
  std::fprintf(stderr,
               "usage: la-plan [--checkpoint-dir DIR] [--size W*H] [--steps N] [--devices 24,24,... | NxGIB]\n"
               "               [--split auto|steps|layers] [--fp8] [--vae-device K|none] [--offload]\n"
               "               [--tflops T] [--reserve GIB] [--dtype bfloat16|float16|float32]\n"
               "  DIR: the Wan2.2-S2V-14B directory, or one holding it (default: the release's 14B config)\n"
               "  --size: output pixels, multiples of 16 (default 720*400, liveavatargen's default)\n"
               "  --devices: capacity of each device in GiB (default 1x80)\n");
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

void parse_size(const std::string& text, PlanRequest& r) {
  const size_t star = text.find('*');
  if (star == std::string::npos) throw la::tools::UsageError("--size must be W*H, got '" + text + "'");
  r.width = integer("--size", text.substr(0, star), 16384);
  r.height = integer("--size", text.substr(star + 1), 16384);
}

la::models::S2vDitConfig read_config(const std::string& dir) {
  for (const fs::path& p : {fs::path(dir) / "config.json", fs::path(dir) / "Wan2.2-S2V-14B" / "config.json"})
    if (fs::exists(p)) return la::models::S2vDitConfig::from_json(la::io::JsonConfig::load(p.string()));
  throw la::tools::UsageError("--checkpoint-dir " + dir + " has neither config.json nor Wan2.2-S2V-14B/config.json");
}

}  // namespace

int main(int argc, char** argv) {
  PlanRequest r;
  r.device_gib = {80};
  std::string vae = "none";
  try {
    la::tools::Args args(argc, argv);
    while (args.next()) {
      const std::string& f = args.flag();
      if (f == "--checkpoint-dir") r.cfg = read_config(args.value());
      else if (f == "--size") parse_size(args.value(), r);
      else if (f == "--steps") r.steps = static_cast<int>(integer(f, args.value(), 1000));
      else if (f == "--devices") r.device_gib = parse_devices(args.value());
      else if (f == "--split") r.split = la::parallel::parse_dit_split(args.value());
      else if (f == "--fp8") r.fp8 = true;
      else if (f == "--vae-device") vae = args.value();
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
      } else if (f == "--help" || f == "-h") {
        usage();
        return 0;
      } else {
        args.unknown();
      }
    }
    if (vae != "none") {
      const int64_t k = vae == "0" ? 0 : integer("--vae-device", vae, kMaxDevices - 1);
      r.vae_device = static_cast<int>(k);
    }
    const la::parallel::MemoryPlan plan = la::parallel::plan_memory(r);
    if (!plan.fits) std::printf("%s\n", la::parallel::plan_suggestion(plan).c_str());
    std::printf("%s\n", la::parallel::format_plan(plan).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "la-plan: %s\n", e.what());
    usage();
    return 2;
  }
}

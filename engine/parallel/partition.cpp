#include "engine/parallel/partition.h"

#include <algorithm>
#include <stdexcept>

namespace la::parallel {
namespace {

// [begin, end) of share `i` of `total` items over `parts`, the first total % parts one larger.
std::pair<int64_t, int64_t> share(int64_t i, int64_t total, int64_t parts) {
  const int64_t base = total / parts, extra = total % parts;
  const int64_t begin = i * base + std::min(i, extra);
  return {begin, begin + base + (i < extra ? 1 : 0)};
}

}  // namespace

DitSplit parse_dit_split(const std::string& name) {
  if (name == "auto") return DitSplit::kAuto;
  if (name == "steps") return DitSplit::kSteps;
  if (name == "layers") return DitSplit::kLayers;
  throw std::invalid_argument("dit-split must be auto, steps or layers, got '" + name + "'");
}

const char* dit_split_name(DitSplit split) {
  switch (split) {
    case DitSplit::kAuto: return "auto";
    case DitSplit::kSteps: return "steps";
    case DitSplit::kLayers: return "layers";
  }
  return "?";
}

std::vector<StageAssignment> assign_stages(DitSplit split, int64_t stages, int64_t num_layers, int steps) {
  if (split == DitSplit::kAuto) throw std::invalid_argument("assign_stages needs steps or layers (the planner resolves auto)");
  if (stages < 1) throw std::invalid_argument("a DiT pipeline needs at least one device");
  if (steps < 1 || num_layers < 1) throw std::invalid_argument("a DiT pipeline needs at least one step and one block");
  if (split == DitSplit::kSteps && stages > steps)
    throw std::invalid_argument("dit-split=steps runs one or more whole denoising steps per device: " +
                                std::to_string(stages) + " devices for " + std::to_string(steps) +
                                " steps leaves devices idle; use at most " + std::to_string(steps) +
                                " devices, or dit-split=layers");
  if (split == DitSplit::kLayers && stages > num_layers)
    throw std::invalid_argument("dit-split=layers gives every device at least one of the DiT's " +
                                std::to_string(num_layers) + " blocks: " + std::to_string(stages) +
                                " devices are too many; use at most " + std::to_string(num_layers));
  std::vector<StageAssignment> out;
  for (int64_t d = 0; d < stages; ++d) {
    StageAssignment a;
    if (split == DitSplit::kSteps) {
      const auto [b, e] = share(d, steps, stages);
      a.first_step = static_cast<int>(b);
      a.end_step = static_cast<int>(e);
      a.layers = {0, num_layers};
    } else {
      const auto [b, e] = share(d, num_layers, stages);
      a.layers = {b, e};
      a.first_step = 0;
      a.end_step = steps;
    }
    out.push_back(a);
  }
  return out;
}

}  // namespace la::parallel

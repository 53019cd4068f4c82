// How a stream's DiT work is spread over its devices (DESIGN §6): which
// blocks and which denoising steps each pipeline stage holds. The planner
// (memory_plan.h) and the pipeline (dit_pipeline.h) both read it, so what is
// planned is what runs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/models/s2v_dit_layout.h"

namespace la::parallel {

enum class DitSplit { kAuto, kSteps, kLayers };

// "auto", "steps", "layers"; throws std::invalid_argument naming the value.
DitSplit parse_dit_split(const std::string& name);
const char* dit_split_name(DitSplit split);

struct StageAssignment {
  models::DitLayerRange layers;  // blocks this stage holds (and their KV rings)
  int first_step = 0;            // denoising steps it runs: [first_step, end_step)
  int end_step = 0;
};

// `steps`: stage d holds the whole DiT and runs a contiguous share of the
// steps (the first steps % D stages one more). `layers`: stage d holds a
// contiguous share of the blocks (the first num_layers % D stages one more)
// for every step. Throws std::invalid_argument when there are more stages
// than steps (steps) or blocks (layers), saying how many there can be.
std::vector<StageAssignment> assign_stages(DitSplit split, int64_t stages, int64_t num_layers, int steps);

}  // namespace la::parallel

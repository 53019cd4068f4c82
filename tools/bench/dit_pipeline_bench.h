// la-bench-dit --devices LIST --split steps|layers: the DiT pipeline of one
// stream over several stages (engine/parallel/dit_pipeline.h). Prints the
// pipeline's frames/s in steady state and, per stage, its busy time, idle
// time and items (block steps) per second, so the overlap of the stages shows.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "engine/models/s2v_dit_layout.h"

namespace la::tools {

struct PipelineBenchOptions {
  std::vector<std::string> devices;  // "cpu", "cuda:0", ...
  std::string split = "layers";
  int64_t width = 704, height = 384;
  int64_t blocks = 8;
  int steps = 4;
  bool fp8 = false;
  std::string handover = "nccl";  // between GPUs: nccl, copy, nccl-everywhere (parallel::GpuHandover)
};

// `tensors`: the whole DiT's weights (any device); each stage takes its part.
// Returns the process exit status.
int run_pipeline_bench(const PipelineBenchOptions& o, const std::map<std::string, at::Tensor>& tensors,
                       const models::S2vDitConfig& cfg, at::ScalarType dtype);

}  // namespace la::tools

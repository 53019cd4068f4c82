// liveavatargen's dit-devices, dit-split and dit-handover properties (DESIGN §6):
// the list of devices one stream's DiT is spread over, how, and how its stages
// on different GPUs pass their tensors.
#pragma once

#include <glib-object.h>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/parallel/dit_pipeline.h"
#include "engine/parallel/partition.h"

namespace la::gst {

// "0,1,2,3", "cpu,cpu", " 0, 0 " -> CUDA ordinals, -1 for "cpu"; "" -> empty
// (cuda-device-id alone). Every CUDA ordinal is checked against the runtime
// (gst/device.h); the CPU and CUDA devices cannot be mixed (they run
// different dtypes). Throws std::runtime_error / std::invalid_argument
// naming the entry.
std::vector<int> parse_dit_devices(const std::string& text);

// Physical memory of this machine: a cpu entry's capacity for the planner.
int64_t host_memory_bytes();

}  // namespace la::gst

G_BEGIN_DECLS
// The GEnum of dit-split: auto, steps, layers (la::parallel::DitSplit values).
GType gst_la_dit_split_get_type(void);
#define GST_TYPE_LA_DIT_SPLIT (gst_la_dit_split_get_type())
// The GEnum of dit-handover: nccl, copy (la::parallel::GpuHandover values).
GType gst_la_dit_handover_get_type(void);
#define GST_TYPE_LA_DIT_HANDOVER (gst_la_dit_handover_get_type())
G_END_DECLS

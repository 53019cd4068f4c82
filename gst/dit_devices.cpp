#include "gst/dit_devices.h"

#include <cctype>
#include <stdexcept>
#include <unistd.h>

#include "gst/device.h"

namespace la::gst {

std::vector<int> parse_dit_devices(const std::string& text) {
  std::vector<int> ids;
  size_t pos = 0;
  bool any_text = false;
  for (char c : text) any_text = any_text || !std::isspace(static_cast<unsigned char>(c));
  if (!any_text) return ids;
  while (pos <= text.size()) {
    const size_t comma = text.find(',', pos);
    std::string entry = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front()))) entry.erase(0, 1);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back()))) entry.pop_back();
    if (entry == "cpu") {
      ids.push_back(-1);
    } else {
      bool digits = !entry.empty() && entry.size() <= 4;
      for (char c : entry) digits = digits && std::isdigit(static_cast<unsigned char>(c));
      if (!digits)
        throw std::invalid_argument("dit-devices entry '" + entry + "' in '" + text +
                                    "' is neither a CUDA ordinal nor cpu (e.g. dit-devices=0,1,2,3 or cpu,cpu)");
      ids.push_back(std::stoi(entry));
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  for (int id : ids)
    if ((id < 0) != (ids.front() < 0))
      throw std::invalid_argument("dit-devices '" + text +
                                  "' mixes the CPU (fp32) and CUDA devices (bf16): list only one kind");
  for (int id : ids) {
    if (id < 0) continue;
    const std::string why = why_no_cuda_device(id);
    if (!why.empty())
      throw std::runtime_error("dit-devices '" + text + "' names CUDA device " + std::to_string(id) + " but " + why +
                               "; list devices this machine has, or cpu,cpu to run on the CPU");
  }
  return ids;
}

int64_t host_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<int64_t>(pages) * size : 0;
}

}  // namespace la::gst

GType gst_la_dit_split_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(la::parallel::DitSplit::kAuto), "steps when a whole DiT and its caches fit every device, else layers", "auto"},
      {static_cast<gint>(la::parallel::DitSplit::kSteps), "every device holds the whole DiT and runs a share of the denoising steps", "steps"},
      {static_cast<gint>(la::parallel::DitSplit::kLayers), "every device holds a share of the DiT's blocks for every step", "layers"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) {
    const GType t = g_enum_register_static("GstLaDitSplit", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

GType gst_la_dit_handover_get_type(void) {
  static gsize type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(la::parallel::GpuHandover::kNccl), "NCCL send/receive between the GPUs' stages", "nccl"},
      {static_cast<gint>(la::parallel::GpuHandover::kCopy),
       "device-to-device copies (Tensor::to; through the host without GPU peer access), where NCCL cannot run",
       "copy"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) {
    const GType t = g_enum_register_static("GstLaDitHandover", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

#include "engine/io/safetensors_writer.h"

#include "engine/io/safetensors_format.h"
#include "engine/io/tensor_view.h"

namespace la::io {

void write_safetensors(const std::string& path, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> keep;  // contiguous CPU copies, alive until written
  std::vector<RawTensor> raw;
  keep.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.to(at::kCPU).contiguous());
    const auto& c = keep.back();
    raw.push_back({name, from_scalar_type(c.scalar_type()), c.sizes().vec(), c.data_ptr()});
  }
  write_safetensors_raw(path, raw, metadata);
}

}  // namespace la::io

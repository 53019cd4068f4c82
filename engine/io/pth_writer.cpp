#include "engine/io/pth_writer.h"

#include "engine/io/pth_archive.h"
#include "engine/io/tensor_view.h"

namespace la::io {

void write_pth_tensors(const std::string& path, const NamedTensors& tensors) {
  std::vector<at::Tensor> keep;  // contiguous CPU copies, alive until written
  std::vector<PthTensorBytes> raw;
  keep.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.to(at::kCPU).contiguous());
    const auto& c = keep.back();
    raw.push_back({name, from_scalar_type(c.scalar_type()), c.sizes().vec(), c.data_ptr()});
  }
  write_pth(path, raw);
}

}  // namespace la::io

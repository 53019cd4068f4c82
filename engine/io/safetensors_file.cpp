#include "engine/io/safetensors_file.h"

#include "engine/io/tensor_view.h"

namespace la::io {

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(MappedFile::open(path)),
      header_(parse_safetensors_header(file_->data(), file_->size(), path)) {}

std::map<std::string, at::Tensor> SafetensorsFile::tensors() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& e : header_.entries) {
    std::vector<int64_t> strides(e.shape.size(), 1);
    int64_t numel = 1;
    for (size_t i = e.shape.size(); i-- > 0;) {
      strides[i] = numel;
      numel *= e.shape[i];
    }
    out.emplace(e.name, tensor_over_mapping(file_, e.begin, e.dtype, numel, e.shape, strides, 0));
  }
  return out;
}

}  // namespace la::io

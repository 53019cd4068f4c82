#include "engine/io/pth_file.h"

#include "engine/io/pth_archive.h"
#include "engine/io/tensor_view.h"

namespace la::io {

struct PthFile::Parsed {
  PthContents contents;
};

PthFile::PthFile(const std::string& path)
    : file_(MappedFile::open(path)),
      parsed_(new Parsed{parse_pth(file_->data(), file_->size(), path)}) {}

PthFile::~PthFile() = default;

std::map<std::string, at::Tensor> PthFile::tensors() const {
  std::map<std::string, at::Tensor> out;
  // Tensors of one storage view one from_blob storage, as in PyTorch.
  std::map<std::string, at::Tensor> storages;
  for (const auto& t : parsed_->contents.tensors) {
    auto it = storages.find(t.storage_key);
    if (it == storages.end()) {
      const ZipSpan& span = parsed_->contents.storages.at(t.storage_key);
      at::Tensor flat = tensor_over_mapping(file_, span.offset, t.dtype, t.storage_numel,
                                            {t.storage_numel}, {1}, 0);
      it = storages.emplace(t.storage_key, flat).first;
    }
    out.emplace(t.name, it->second.as_strided(t.shape, t.strides, t.storage_offset));
  }
  return out;
}

}  // namespace la::io

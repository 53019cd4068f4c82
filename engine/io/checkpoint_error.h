// The one exception type of checkpoint I/O. Its message always names the file
// and, where one is involved, the tensor, so an element can forward it to the
// user verbatim through GST_ELEMENT_ERROR.
#pragma once

#include <stdexcept>
#include <string>

namespace la::io {

class CheckpointError : public std::runtime_error {
 public:
  CheckpointError(const std::string& file, const std::string& what)
      : std::runtime_error("file " + file + ": " + what), file_(file) {}
  CheckpointError(const std::string& file, const std::string& tensor, const std::string& what)
      : std::runtime_error("file " + file + ": tensor " + tensor + ": " + what),
        file_(file), tensor_(tensor) {}

  // "file F: tensor N <predicate>", for messages that read as one sentence:
  // about_tensor(f, "w", "has shape [4], expected [5]").
  static CheckpointError about_tensor(const std::string& file, const std::string& tensor,
                                      const std::string& predicate) {
    CheckpointError e(file, "tensor " + tensor + " " + predicate);
    e.tensor_ = tensor;
    return e;
  }

  const std::string& file() const { return file_; }
  const std::string& tensor() const { return tensor_; }

 private:
  std::string file_;
  std::string tensor_;
};

}  // namespace la::io

// The weights of one model, gathered from checkpoint files, looked up by key
// with shape checks. Every key a model reads is marked; the keys it never read
// can be listed, so an unexpected tensor is reported instead of ignored.
//
//   auto w = WeightStore::open(dir + "/Wan2.1_VAE.pth");
//   at::Tensor k = w.get("conv1.weight", {32, 32, 1, 1, 1});
//   for (auto& key : w.unused_keys()) GST_WARNING("unused: %s", key.c_str());
//
// Not thread-safe: load a model from one thread.
#pragma once

#include <ATen/core/Tensor.h>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace la::io {

class WeightStore {
 public:
  // `path` is a .safetensors file, a torch zip (.pth/.pt/.bin), a
  // *.safetensors.index.json, or a directory holding exactly one index or one
  // .safetensors file. Throws CheckpointError.
  static WeightStore open(const std::string& path);

  // Adds the tensors of another file; a key present twice is an error.
  void add_file(const std::string& path);
  // Adds tensors made in memory (benchmarks with random weights, tests);
  // `origin` stands in for the file name in errors.
  void add_tensors(const std::string& origin, const std::map<std::string, at::Tensor>& tensors);

  bool contains(const std::string& key) const;
  std::vector<std::string> keys() const;
  size_t size() const { return entries_.size(); }
  // The file a key came from ("" if absent).
  std::string file_of(const std::string& key) const;

  // The tensor as stored (CPU, zero-copy), marked used. Throws CheckpointError
  // "file F: tensor N has shape X, expected Y" (or dtype) on a mismatch, and
  // "tensor N is missing" naming the files searched.
  at::Tensor get(const std::string& key, at::IntArrayRef expected_shape,
                 std::optional<at::ScalarType> expected_dtype = std::nullopt);
  // Shape unchecked (for tensors whose shape is derived from others), marked used.
  at::Tensor get_unchecked(const std::string& key);

  // The shape of a key without marking it used (for reading configs back from
  // shapes). Throws CheckpointError if absent.
  std::vector<int64_t> peek_shape(const std::string& key) const;

  // Keys never read through get*, sorted.
  std::vector<std::string> unused_keys() const;

 private:
  struct Entry {
    at::Tensor tensor;
    std::string file;
    bool used = false;
  };
  const Entry& find(const std::string& key);
  void insert(const std::string& key, at::Tensor t, const std::string& file);
  void add_sharded(const std::string& index_path);

  std::map<std::string, Entry> entries_;
  std::vector<std::string> files_;
};

}  // namespace la::io

#include "engine/io/weight_store.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_config.h"
#include "engine/io/pth_file.h"
#include "engine/io/safetensors_file.h"
#include "engine/io/tensor_view.h"

namespace la::io {
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The single index or single .safetensors file of a directory.
std::string resolve_directory(const std::string& dir) {
  std::vector<std::string> indexes, singles;
  for (const auto& e : fs::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (ends_with(name, ".safetensors.index.json")) indexes.push_back(e.path().string());
    else if (ends_with(name, ".safetensors")) singles.push_back(e.path().string());
  }
  if (indexes.size() == 1) return indexes[0];
  if (indexes.empty() && singles.size() == 1) return singles[0];
  throw CheckpointError(dir, "expected one *.safetensors.index.json or one .safetensors file, found " +
                                 std::to_string(indexes.size()) + " indexes and " +
                                 std::to_string(singles.size()) + " .safetensors files");
}

}  // namespace

WeightStore WeightStore::open(const std::string& path) {
  WeightStore store;
  store.add_file(path);
  return store;
}

void WeightStore::insert(const std::string& key, at::Tensor t, const std::string& file) {
  const auto [it, fresh] = entries_.emplace(key, Entry{std::move(t), file, false});
  if (!fresh) throw CheckpointError(file, key, "also present in " + it->second.file);
}

void WeightStore::add_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return add_file(resolve_directory(path));
  if (!fs::exists(path, ec)) throw CheckpointError(path, "does not exist");
  files_.push_back(path);
  if (ends_with(path, ".index.json")) return add_sharded(path);
  if (ends_with(path, ".safetensors")) {
    for (auto& [k, t] : SafetensorsFile(path).tensors()) insert(k, std::move(t), path);
    return;
  }
  if (ends_with(path, ".pth") || ends_with(path, ".pt") || ends_with(path, ".bin")) {
    for (auto& [k, t] : PthFile(path).tensors()) insert(k, std::move(t), path);
    return;
  }
  throw CheckpointError(path, "unknown checkpoint format (expected .safetensors, .safetensors.index.json, .pth, .pt or .bin)");
}

void WeightStore::add_tensors(const std::string& origin, const std::map<std::string, at::Tensor>& tensors) {
  files_.push_back(origin);
  for (const auto& [k, t] : tensors) insert(k, t, origin);
}

void WeightStore::add_sharded(const std::string& index_path) {
  const auto index = JsonConfig::load(index_path);
  const auto map = index.get_object("weight_map");
  const fs::path dir = fs::path(index_path).parent_path();
  std::map<std::string, std::set<std::string>> keys_by_shard;
  for (const auto& key : map.keys()) {
    const auto shard = map.get_string(key);
    // The index is untrusted: a shard name may not leave the directory.
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "." || shard == "..")
      throw CheckpointError(index_path, key, "shard name '" + shard + "' is not a plain file name");
    keys_by_shard[shard].insert(key);
  }
  for (const auto& [shard, listed] : keys_by_shard) {
    const std::string shard_path = (dir / shard).string();
    auto tensors = SafetensorsFile(shard_path).tensors();
    for (const auto& key : listed)
      if (tensors.find(key) == tensors.end())
        throw CheckpointError(index_path, key, "listed in weight_map for " + shard + ", which does not hold it");
    for (auto& [k, t] : tensors) {
      if (listed.count(k) == 0)
        throw CheckpointError(shard_path, k, "not listed in " + fs::path(index_path).filename().string());
      insert(k, std::move(t), shard_path);
    }
  }
}

bool WeightStore::contains(const std::string& key) const { return entries_.count(key) != 0; }

std::vector<std::string> WeightStore::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, e] : entries_) out.push_back(k);
  return out;
}

std::string WeightStore::file_of(const std::string& key) const {
  const auto it = entries_.find(key);
  return it == entries_.end() ? std::string() : it->second.file;
}

const WeightStore::Entry& WeightStore::find(const std::string& key) {
  const auto it = entries_.find(key);
  if (it == entries_.end())
    throw CheckpointError::about_tensor(files_.empty() ? std::string("(none)") : join(files_), key, "is missing");
  it->second.used = true;
  return it->second;
}

at::Tensor WeightStore::get(const std::string& key, at::IntArrayRef expected_shape,
                            std::optional<at::ScalarType> expected_dtype) {
  const Entry& e = find(key);
  if (e.tensor.sizes() != expected_shape)
    throw CheckpointError::about_tensor(e.file, key, "has shape " + shape_string(e.tensor.sizes()) + ", expected " +
                                           shape_string(expected_shape));
  if (expected_dtype && e.tensor.scalar_type() != *expected_dtype)
    throw CheckpointError::about_tensor(e.file, key, std::string("has dtype ") + at::toString(e.tensor.scalar_type()) +
                                           ", expected " + at::toString(*expected_dtype));
  return e.tensor;
}

std::vector<int64_t> WeightStore::peek_shape(const std::string& key) const {
  const auto it = entries_.find(key);
  if (it == entries_.end())
    throw CheckpointError::about_tensor(files_.empty() ? std::string("(none)") : join(files_), key, "is missing");
  return it->second.tensor.sizes().vec();
}

at::Tensor WeightStore::get_unchecked(const std::string& key) { return find(key).tensor; }

std::vector<std::string> WeightStore::unused_keys() const {
  std::vector<std::string> out;
  for (const auto& [k, e] : entries_)
    if (!e.used) out.push_back(k);
  return out;
}

}  // namespace la::io

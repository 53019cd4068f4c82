#include "engine/io/json_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/io/checkpoint_error.h"
#include "engine/io/json_depth.h"

namespace la::io {

using Json = nlohmann::ordered_json;

struct JsonConfig::Impl {
  std::string path;
  std::string prefix;  // "parent." for nested objects
  Json root;

  const Json& at(const std::string& key) const {
    const auto it = root.find(key);
    if (it == root.end()) throw CheckpointError(path, "missing key '" + prefix + key + "'");
    return *it;
  }
  [[noreturn]] void wrong(const std::string& key, const char* expected) const {
    throw CheckpointError(path, "key '" + prefix + key + "' is not " + expected + " (found " +
                                    root.at(key).dump() + ")");
  }
};

JsonConfig::JsonConfig(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JsonConfig::~JsonConfig() = default;
JsonConfig::JsonConfig(JsonConfig&&) noexcept = default;
JsonConfig& JsonConfig::operator=(JsonConfig&&) noexcept = default;

JsonConfig JsonConfig::parse(const std::string& text, const std::string& name) {
  if (!json_depth_within(text, 64)) throw CheckpointError(name, "JSON nests too deeply");
  auto impl = std::make_unique<Impl>();
  impl->path = name;
  try {
    impl->root = Json::parse(text);
  } catch (const Json::exception& ex) {
    throw CheckpointError(name, std::string("not valid JSON: ") + ex.what());
  }
  if (!impl->root.is_object()) throw CheckpointError(name, "not a JSON object");
  return JsonConfig(std::move(impl));
}

JsonConfig JsonConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw CheckpointError(path, "cannot open");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::streamoff>(in.tellg());
  if (size < 0 || size > (64 << 20)) throw CheckpointError(path, "not a JSON config (size " + std::to_string(size) + " bytes)");
  in.seekg(0);
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

const std::string& JsonConfig::path() const { return impl_->path; }
bool JsonConfig::has(const std::string& key) const { return impl_->root.contains(key); }

int64_t JsonConfig::get_int(const std::string& key) const {
  const auto& v = impl_->at(key);
  if (!v.is_number_integer()) impl_->wrong(key, "an integer");
  return v.get<int64_t>();
}

double JsonConfig::get_double(const std::string& key) const {
  const auto& v = impl_->at(key);
  if (!v.is_number()) impl_->wrong(key, "a number");
  return v.get<double>();
}

bool JsonConfig::get_bool(const std::string& key) const {
  const auto& v = impl_->at(key);
  if (!v.is_boolean()) impl_->wrong(key, "a boolean");
  return v.get<bool>();
}

std::string JsonConfig::get_string(const std::string& key) const {
  const auto& v = impl_->at(key);
  if (!v.is_string()) impl_->wrong(key, "a string");
  return v.get<std::string>();
}

std::vector<int64_t> JsonConfig::get_int_list(const std::string& key) const {
  const auto& v = impl_->at(key);
  if (!v.is_array()) impl_->wrong(key, "a list of integers");
  std::vector<int64_t> out;
  for (const auto& e : v) {
    if (!e.is_number_integer()) impl_->wrong(key, "a list of integers");
    out.push_back(e.get<int64_t>());
  }
  return out;
}

std::vector<std::string> JsonConfig::get_string_list(const std::string& key) const {
  const auto& v = impl_->at(key);
  if (!v.is_array()) impl_->wrong(key, "a list of strings");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) impl_->wrong(key, "a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::vector<bool> JsonConfig::get_bool_list(const std::string& key) const {
  const auto& v = impl_->at(key);
  if (!v.is_array()) impl_->wrong(key, "a list of booleans");
  std::vector<bool> out;
  for (const auto& e : v) {
    if (!e.is_boolean()) impl_->wrong(key, "a list of booleans");
    out.push_back(e.get<bool>());
  }
  return out;
}

int64_t JsonConfig::get_int(const std::string& key, int64_t fallback) const {
  return has(key) ? get_int(key) : fallback;
}
double JsonConfig::get_double(const std::string& key, double fallback) const {
  return has(key) ? get_double(key) : fallback;
}
bool JsonConfig::get_bool(const std::string& key, bool fallback) const {
  return has(key) ? get_bool(key) : fallback;
}
std::string JsonConfig::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

JsonConfig JsonConfig::get_object(const std::string& key) const {
  const auto& v = impl_->at(key);
  if (!v.is_object()) impl_->wrong(key, "an object");
  auto impl = std::make_unique<Impl>();
  impl->path = impl_->path;
  impl->prefix = impl_->prefix + key + ".";
  impl->root = v;
  return JsonConfig(std::move(impl));
}

std::vector<std::string> JsonConfig::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : impl_->root.items()) out.push_back(k);
  return out;
}

}  // namespace la::io

// A JSON configuration file (config.json, preprocessor_config.json, index
// files) with typed getters whose errors name the file and the key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace la::io {

class JsonConfig {
 public:
  // Throws CheckpointError if the file is missing, too large (> 64 MB) or not a JSON object.
  static JsonConfig load(const std::string& path);
  static JsonConfig parse(const std::string& text, const std::string& name_for_errors);
  ~JsonConfig();
  JsonConfig(JsonConfig&&) noexcept;
  JsonConfig& operator=(JsonConfig&&) noexcept;

  const std::string& path() const;
  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;  // integers are accepted
  bool get_bool(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key) const;
  std::vector<bool> get_bool_list(const std::string& key) const;
  // With a default when the key is absent (a present key of the wrong type still throws).
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // A nested object as its own config (errors then name "file: parent.key").
  JsonConfig get_object(const std::string& key) const;
  // Keys of the top-level object, in file order.
  std::vector<std::string> keys() const;

 private:
  struct Impl;
  explicit JsonConfig(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace la::io

#include "tests/parity/parity_dir.h"

#include <cstdlib>
#include <stdexcept>

#include "engine/io/safetensors_file.h"

namespace la::test {

std::string parity_dir() {
  for (const char* var : {"LIVEAVATAR_PARITY_DIR", "LIVEAVATAR_PARITY_DIR_DEFAULT"})
    if (const char* v = std::getenv(var); v && *v) return v;
  return "../shared/fixtures/parity";
}

std::string parity_file(const std::string& name) { return parity_dir() + "/" + name; }

io::JsonConfig fixture_config(const std::string& file) {
  const io::SafetensorsFile f(file);
  const auto it = f.metadata().find("config");
  if (it == f.metadata().end()) throw std::runtime_error(file + " has no __metadata__ config");
  return io::JsonConfig::parse(it->second, file + " __metadata__.config");
}

}  // namespace la::test

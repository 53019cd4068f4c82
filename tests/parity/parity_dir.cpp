#include "tests/parity/parity_dir.h"

#include <cstdlib>
#include <stdexcept>

namespace la::test {

std::string parity_dir() {
  for (const char* var : {"LIVEAVATAR_PARITY_DIR", "LIVEAVATAR_PARITY_DIR_DEFAULT"})
    if (const char* v = std::getenv(var); v && *v) return v;
  return "../shared/fixtures/parity";
}

std::string parity_file(const std::string& name) { return parity_dir() + "/" + name; }

}  // namespace la::test

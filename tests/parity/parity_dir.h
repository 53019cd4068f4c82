// Where the parity fixtures are: $LIVEAVATAR_PARITY_DIR, else the default the
// build passes in ($LIVEAVATAR_PARITY_DIR_DEFAULT = ../shared/fixtures/parity).
#pragma once

#include <string>

namespace la::test {

std::string parity_dir();
std::string parity_file(const std::string& name);

}  // namespace la::test

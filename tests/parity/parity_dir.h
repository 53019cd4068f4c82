// Where the parity fixtures are, and what they record about themselves: $LIVEAVATAR_PARITY_DIR, else the default the
// build passes in ($LIVEAVATAR_PARITY_DIR_DEFAULT = ../shared/fixtures/parity).
#pragma once

#include <string>

#include "engine/io/json_config.h"

namespace la::test {

std::string parity_dir();
std::string parity_file(const std::string& name);
// The module configuration a fixture file records in __metadata__["config"].
io::JsonConfig fixture_config(const std::string& file);

}  // namespace la::test

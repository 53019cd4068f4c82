// Writes a tiny checkpoint in the release layout with la-mkcheckpoint
// ($LA_MKCHECKPOINT, set by the build) for tests that need real files.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace la::test {

// Writes DIR/Wan2.2-S2V-14B and DIR/LiveAvatar; returns the tool's exit status
// (-1 when LA_MKCHECKPOINT is unset).
// `more`: further options (e.g. "--dit-layers 5").
inline int make_tiny_checkpoint(const std::filesystem::path& dir, int seed = 42, const std::string& more = "") {
  const char* tool = std::getenv("LA_MKCHECKPOINT");
  if (!tool) return -1;
  const std::string cmd = std::string(tool) + " --scale tiny --seed " + std::to_string(seed) + " " + more +
                          " --out " + dir.string() + " >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

}  // namespace la::test

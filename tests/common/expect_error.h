// Helpers for tests that check error messages.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace la::test {

// The message of the E that f() throws, or "(no error)".
template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

inline void expect_contains(const std::string& msg, const std::string& words) {
  EXPECT_NE(msg.find(words), std::string::npos) << "'" << msg << "' lacks '" << words << "'";
}

}  // namespace la::test

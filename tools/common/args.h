// Walks a tool's argv as "--flag value" pairs; errors are std::invalid_argument
// so each tool prints its usage.
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>

namespace la::tools {

class Args {
 public:
  Args(int argc, char** argv) : argc_(argc), argv_(argv) {}
  // Advances to the next flag; false at the end.
  bool next() {
    if (++i_ >= argc_) return false;
    flag_ = argv_[i_];
    return true;
  }
  const std::string& flag() const { return flag_; }
  // The value following the current flag.
  std::string value() {
    if (i_ + 1 >= argc_) throw std::invalid_argument(flag_ + " needs a value");
    return argv_[++i_];
  }
  // The value following the current flag, as an int (std::invalid_argument when it is not one).
  int int_value() {
    const std::string v = value();
    try {
      size_t used = 0;
      const int n = std::stoi(v, &used);
      if (used == v.size()) return n;
    } catch (const std::exception&) {
    }
    throw std::invalid_argument(flag_ + " needs an integer, got '" + v + "'");
  }
  [[noreturn]] void unknown() const { throw std::invalid_argument("unknown argument " + flag_); }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string flag_;
};

// A tool's main around `body` (returning the exit status): a std::invalid_argument is a bad
// argument, printed as "<tool>: <why>" with the usage (`usage(stderr)`), status 2; any other
// exception is printed the same way without the usage, status 1.
template <typename Usage, typename Body>
int run_tool(const char* tool, Usage usage, Body body) {
  try {
    return body();
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    usage(stderr);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return 1;
  }
}

}  // namespace la::tools

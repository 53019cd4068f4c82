// Walks a tool's argv as "--flag value" pairs; errors are UsageError so each
// tool prints its usage.
#pragma once

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace la::tools {

// A bad command line: run_tool prints the usage with it. Other errors, including the
// std::invalid_argument the engine throws for a value it cannot use, are printed alone.
class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

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
    if (i_ + 1 >= argc_) throw UsageError(flag_ + " needs a value");
    return argv_[++i_];
  }
  // The value following the current flag as a number; UsageError unless the whole
  // value is one ("12x", "", " 12", out-of-range values, and for doubles nan and inf are refused).
  int int_value() { return number<int>("an integer"); }
  int64_t int64_value() { return number<int64_t>("an integer"); }
  uint64_t uint64_value() { return number<uint64_t>("an integer >= 0"); }
  double double_value() { return number<double>("a number"); }
  [[noreturn]] void unknown() const { throw UsageError("unknown argument " + flag_); }

 private:
  template <typename T>
  T number(const char* what) {
    const std::string v = value();
    if (v.empty() || std::isspace(static_cast<unsigned char>(v[0])))
      throw UsageError(flag_ + " needs " + what + ", got '" + v + "'");
    try {
      size_t used = 0;
      T n{};
      if constexpr (std::is_same_v<T, int>) n = std::stoi(v, &used);
      else if constexpr (std::is_same_v<T, int64_t>) n = std::stoll(v, &used);
      else if constexpr (std::is_same_v<T, uint64_t>) n = v.find('-') == std::string::npos ? std::stoull(v, &used) : 0;
      else n = std::stod(v, &used);
      if constexpr (std::is_floating_point_v<T>) {
        if (!std::isfinite(n)) used = 0;
      }
      if (used == v.size()) return n;
    } catch (const std::exception&) {
    }
    throw UsageError(flag_ + " needs " + what + ", got '" + v + "'");
  }

  int argc_;
  char** argv_;
  int i_ = 0;
  std::string flag_;
};

// True when the command line asks for help: -h or --help anywhere in it.
inline bool asks_for_help(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "-h" || std::string(argv[i]) == "--help") return true;
  return false;
}

// A tool's main around `body` (returning the exit status), the same for every tool: -h or
// --help prints the usage to stdout, status 0, and runs nothing; a UsageError is a bad
// argument, printed as "<tool>: <why>" with the usage (`usage(stderr)`), status 2; any other
// exception is printed the same way without the usage, status 1.
template <typename Usage, typename Body>
int run_tool(const char* tool, int argc, char** argv, Usage usage, Body body) {
  if (asks_for_help(argc, argv)) {
    usage(stdout);
    return 0;
  }
  try {
    return body();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    usage(stderr);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return 1;
  }
}

}  // namespace la::tools

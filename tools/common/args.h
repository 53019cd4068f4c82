// Walks a tool's argv as "--flag value" pairs; errors are std::invalid_argument
// so each tool prints its usage.
#pragma once

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
  [[noreturn]] void unknown() const { throw std::invalid_argument("unknown argument " + flag_); }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string flag_;
};

}  // namespace la::tools

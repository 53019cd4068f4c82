// The tools' command lines (tools/common/args.h): numbers are refused unless the whole value is
// one, and run_tool turns a bad argument into status 2 with the usage, any other failure into 1.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tools/common/args.h"

namespace {

// argv for Args: {"tool", flag, value}.
struct Argv {
  explicit Argv(std::vector<std::string> words) : words_(std::move(words)) {
    for (auto& w : words_) pointers_.push_back(w.data());
  }
  int argc() const { return static_cast<int>(pointers_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> words_;
  std::vector<char*> pointers_;
};

template <typename Read>
std::string refusal(const std::string& value, Read read) {
  Argv a({"tool", "--n", value});
  la::tools::Args args(a.argc(), a.argv());
  EXPECT_TRUE(args.next());
  try {
    read(args);
  } catch (const la::tools::UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(ToolArgs, NumbersAreTheWholeValue) {
  Argv a({"tool", "--blocks", "12", "--size", "-7", "--seed", "18446744073709551615", "--minutes", "0.5"});
  la::tools::Args args(a.argc(), a.argv());
  ASSERT_TRUE(args.next());
  EXPECT_EQ(args.int_value(), 12);
  ASSERT_TRUE(args.next());
  EXPECT_EQ(args.int64_value(), -7);
  ASSERT_TRUE(args.next());
  EXPECT_EQ(args.uint64_value(), UINT64_MAX);
  ASSERT_TRUE(args.next());
  EXPECT_DOUBLE_EQ(args.double_value(), 0.5);
  EXPECT_FALSE(args.next());
}

TEST(ToolArgs, RefusesWhatIsNotANumber) {
  const auto as_int = [](la::tools::Args& a) { a.int_value(); };
  EXPECT_EQ(refusal("12x", as_int), "--n needs an integer, got '12x'");
  EXPECT_EQ(refusal("", as_int), "--n needs an integer, got ''");
  EXPECT_EQ(refusal("99999999999", as_int), "--n needs an integer, got '99999999999'");  // out of int
  EXPECT_EQ(refusal("1.5", [](la::tools::Args& a) { a.int64_value(); }), "--n needs an integer, got '1.5'");
  EXPECT_EQ(refusal("-1", [](la::tools::Args& a) { a.uint64_value(); }), "--n needs an integer >= 0, got '-1'");
  EXPECT_EQ(refusal("abc", [](la::tools::Args& a) { a.double_value(); }), "--n needs a number, got 'abc'");
  EXPECT_EQ(refusal("nan", [](la::tools::Args& a) { a.double_value(); }), "--n needs a number, got 'nan'");
  EXPECT_EQ(refusal("inf", [](la::tools::Args& a) { a.double_value(); }), "--n needs a number, got 'inf'");
  EXPECT_EQ(refusal(" 12", as_int), "--n needs an integer, got ' 12'");
  Argv missing({"tool", "--n"});
  la::tools::Args args(missing.argc(), missing.argv());
  ASSERT_TRUE(args.next());
  EXPECT_THROW(args.int_value(), la::tools::UsageError);  // "--n needs a value"
}

TEST(ToolArgs, RunToolStatusAndUsage) {
  int usages = 0;
  FILE* usage_to = nullptr;
  const auto usage = [&](FILE* f) {
    ++usages;
    usage_to = f;
  };
  Argv plain({"t", "--n", "1"});
  auto run = [&](auto body) { return la::tools::run_tool("t", plain.argc(), plain.argv(), usage, body); };
  EXPECT_EQ(run([] { return 0; }), 0);
  EXPECT_EQ(run([] { return 3; }), 3);
  EXPECT_EQ(usages, 0);
  EXPECT_EQ(run([]() -> int { throw la::tools::UsageError("bad flag"); }), 2);
  EXPECT_EQ(usages, 1);
  EXPECT_EQ(usage_to, stderr);
  EXPECT_EQ(run([]() -> int { throw std::runtime_error("no file"); }), 1);
  EXPECT_EQ(usages, 1);  // a failure that is not the command line's prints no usage
  // Nor does a value the engine refuses after parsing (a pipeline layout, say).
  EXPECT_EQ(run([]() -> int { throw std::invalid_argument("layers split needs..."); }), 1);
  EXPECT_EQ(usages, 1);
  // -h or --help anywhere: the usage on stdout, status 0, the body not run.
  for (const char* help : {"-h", "--help"}) {
    Argv asking({"t", "--n", "1", help});
    bool ran = false;
    EXPECT_EQ(la::tools::run_tool("t", asking.argc(), asking.argv(), usage, [&] {
                ran = true;
                return 3;
              }),
              0);
    EXPECT_FALSE(ran) << help;
    EXPECT_EQ(usage_to, stdout) << help;
  }
  EXPECT_EQ(usages, 3);
}

}  // namespace

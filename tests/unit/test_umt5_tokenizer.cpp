// Prompt cleaning against Python's html/re, tokenisation against Debian's
// spm_encode on the same SentencePiece model, and the padding/truncation
// contract of the umT5 prompt.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/models/umt5/tokenizer.h"
#include "engine/text/prompt_cleaning.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"

using namespace la;

namespace {

const std::vector<std::string> kPrompts = {
    "  A dwarven  blacksmith\t\nspeaks calmly.  ",
    "Tom &amp; Jerry &lt;3 &quot;cartoons&quot;",
    "&amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt;",  // unescaped twice, as the reference does
    "caf&eacute; &copy; 2026 &mdash; &hellip;",
    "&#x4E00;&#19968; &#128512; &#0; &#x80; &#1; &#xD800; &#1114112;",
    "non&nbsp;breaking\u00a0space and ideographic\u3000space\u2028line",
    "一位年轻的女士在明亮的房间里对着镜头说话。東京の夜景 카메라",
    "emoji 😀🎉👩‍🔬 and math ∑∫√",
    "&unknownentity; stays & alone",
    "",
};

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd;
  return out;
}

std::string long_prompt() {
  std::string s;
  for (int i = 0; i < 400; ++i) s += "The avatar speaks word number " + std::to_string(i) + ". ";
  return s;
}

class TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_EQ(test::make_tiny_checkpoint(dir_->path()), 0) << "la-mkcheckpoint ($LA_MKCHECKPOINT)";
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string tokenizer_dir() { return (dir_->path() / "Wan2.2-S2V-14B" / "google" / "umt5-xxl").string(); }
  static test::TempDir* dir_;
};
test::TempDir* TokenizerTest::dir_ = nullptr;

}  // namespace

TEST(PromptCleaning, MatchesPythonHtmlUnescapeAndWhitespaceCollapse) {
  const char* py = std::getenv("LA_TORCH_PYTHON");
  if (!py) GTEST_SKIP() << "LA_TORCH_PYTHON not set: no Python to compare with";
  test::TempDir dir;
  nlohmann::json in = kPrompts;
  test::write_bytes(dir.file("in.json"), in.dump());
  test::write_bytes(dir.file("clean.py"),
                    "import html, json, re, sys\n"
                    "def clean(t):\n"
                    "    t = html.unescape(html.unescape(t)).strip()\n"
                    "    return re.sub(r'\\s+', ' ', t).strip()\n"
                    "print(json.dumps([clean(t) for t in json.load(open(sys.argv[1]))]))\n");
  const auto want = nlohmann::json::parse(run(std::string(py) + " " + dir.file("clean.py") + " " + dir.file("in.json")));
  ASSERT_EQ(want.size(), kPrompts.size());
  for (size_t i = 0; i < kPrompts.size(); ++i)
    EXPECT_EQ(text::clean_prompt(kPrompts[i]), want[i].get<std::string>()) << "prompt " << i << ": " << kPrompts[i];
}

TEST_F(TokenizerTest, PiecesMatchSpmEncode) {
  models::Umt5Tokenizer tok(tokenizer_dir(), 512);
  std::vector<std::string> texts;
  for (const auto& p : kPrompts) texts.push_back(text::clean_prompt(p));
  texts.push_back(long_prompt());
  test::TempDir dir;
  std::string lines;
  for (const auto& t : texts) lines += t + "\n";
  test::write_bytes(dir.file("in.txt"), lines);
  std::istringstream out(run("spm_encode --model=" + tokenizer_dir() + "/spiece.model --output_format=id < " +
                             dir.file("in.txt")));
  std::string line;
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_TRUE(std::getline(out, line)) << "spm_encode gave fewer lines";
    std::vector<int> want;
    std::istringstream ids(line);
    for (int id; ids >> id;) want.push_back(id);
    EXPECT_EQ(tok.encode_clean(texts[i]), want) << "text " << i;
  }
}

TEST_F(TokenizerTest, EosPaddingAndMask) {
  models::Umt5Tokenizer tok(tokenizer_dir(), 32);
  const auto t = tok.tokenize("  A blacksmith   talks.  ");
  const auto pieces = tok.encode_clean("A blacksmith talks.");
  ASSERT_EQ(t.length, static_cast<int64_t>(pieces.size()) + 1);
  EXPECT_FALSE(t.truncated);
  EXPECT_EQ(t.ids.sizes(), (std::vector<int64_t>{1, 32}));
  for (size_t i = 0; i < pieces.size(); ++i) EXPECT_EQ(t.ids[0][static_cast<int64_t>(i)].item<int64_t>(), pieces[i]);
  EXPECT_EQ(t.ids[0][t.length - 1].item<int64_t>(), 1) << "</s>";
  EXPECT_EQ(t.ids.slice(1, t.length).ne(0).sum().item<int64_t>(), 0) << "pad id 0 after";
  EXPECT_EQ(t.mask.sum().item<int64_t>(), t.length);
}

TEST_F(TokenizerTest, LongPromptIsTruncatedKeepingEos) {
  models::Umt5Tokenizer tok(tokenizer_dir(), 16);
  const auto t = tok.tokenize(long_prompt());
  EXPECT_TRUE(t.truncated);
  EXPECT_EQ(t.length, 16);
  EXPECT_EQ(t.ids[0][15].item<int64_t>(), 1);
  EXPECT_EQ(t.mask.sum().item<int64_t>(), 16);
  const auto pieces = tok.encode_clean(long_prompt());
  for (int i = 0; i < 15; ++i) EXPECT_EQ(t.ids[0][i].item<int64_t>(), pieces[i]);
}

TEST_F(TokenizerTest, EmptyPromptIsJustEos) {
  models::Umt5Tokenizer tok(tokenizer_dir(), 8);
  const auto t = tok.tokenize(" \t ");
  EXPECT_EQ(t.length, 1);
  EXPECT_EQ(t.ids[0][0].item<int64_t>(), 1);
}

TEST(Umt5TokenizerFiles, MissingModelIsAClearError) {
  try {
    models::Umt5Tokenizer tok("/nonexistent/google/umt5-xxl", 512);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/google/umt5-xxl/spiece.model"), std::string::npos) << e.what();
  }
}

// Prompt cleaning against Python's html/regex (the reference's), tokenisation
// against transformers' fast tokenizer (what the reference's AutoTokenizer
// loads) on the same SentencePiece model, with and without a tokenizer.json,
// and the padding/truncation contract of the umT5 prompt.
#include <gtest/gtest.h>

#include "tests/common/torch_python.h"

#include <ATen/ATen.h>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

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
    "\x1c" "unit\x1fseparators\x1c stay\x1d inside\x1e",
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
  LA_REQUIRE_TORCH_PYTHON(py);
  test::TempDir dir;
  nlohmann::json in = kPrompts;
  test::write_bytes(dir.file("in.json"), in.dump());
  test::write_bytes(dir.file("clean.py"),
                    "import html, json, sys\n"
                    "import regex as re\n"  // as the reference: its \\s is not the re module's
                    "def clean(t):\n"
                    "    t = html.unescape(html.unescape(t)).strip()\n"
                    "    return re.sub(r'\\s+', ' ', t).strip()\n"
                    "print(json.dumps([clean(t) for t in json.load(open(sys.argv[1]))]))\n");
  const auto want = nlohmann::json::parse(run(std::string(py) + " " + dir.file("clean.py") + " " + dir.file("in.json")));
  ASSERT_EQ(want.size(), kPrompts.size());
  for (size_t i = 0; i < kPrompts.size(); ++i)
    EXPECT_EQ(text::clean_prompt(kPrompts[i]), want[i].get<std::string>()) << "prompt " << i << ": " << kPrompts[i];
}

namespace {

// Prompts for the comparison with transformers, beyond kPrompts: punctuation,
// digits and repeated characters (segmentations of equal score), scripts the
// tiny vocabulary lacks (unknown characters, byte fallback), characters the
// NFKC map changes or turns into spaces, special tokens written as text, and
// whitespace the cleaning collapses.
const std::vector<std::string> kHfPrompts = {
    "Hello, world! (quotes) \"double\" 'single' -- dash; 100% $5 #tag @at ~^`|\\{}[]",
    "Numbers 0123456789 3.14159 1,000,000 2026-01-01 12:30 000000 1000000000 0.000001",
    "!!!!!! ...... ?!?! ---- ____ hahahaha aaaaaaaa zzzzzzz",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u05e2\u05d1\u05e8\u05d9\u05ea \u0e44\u0e17\u0e22 "
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0420\u0443\u0441\u0441\u043a\u0438\u0439 "
    "\u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4 Ti\u1ebfng Vi\u1ec7t",
    "full-width \uff21\uff22\uff23\uff11\uff12\uff13 ligature \ufb01 \u2460 \u00bd \u2122 \u2026 "
    "\uff76\uff80\uff76\uff85 \u00a8 x\u00af \u00b4y",
    "zero\u200bwidth zwj\u200dx bom\ufeffx soft\u00adhyphen ctrl\x07" "bell sep\x1c" "x\x1fy",
    "literal </s> and <pad> and <unk> and <extra_id_0> <extra_id_2>x <0x41> <s> </s",
    "</s></s><pad>",
    "</s>",
    "tabs\tand\nnewlines\r\nand\u2003em\u3000spaces \u00a0 end",
    "\u2581already\u2581meta \u2581 \u2581\u2581",
    "a",
    "\U0001F600",
    "\U0001F469\u200d\U0001F52C\U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1EF\U0001F1F5 \U0001F3F3\ufe0f\u200d\U0001F308",
};

// The one documented difference (docs/text-and-audio.md, hf_unigram.h): the
// fast tokenizer applies the NFKC map per grapheme cluster and, for a cluster
// that starts with a mapped sequence, keeps only that sequence's image: "a" +
// grave + acute becomes "à", where sentencepiece keeps the acute.
const std::string kClusterPrompt = "xa\u0300\u0301y", kClusterImage = "xa\u0300y";

// The tokenizer directories the fast tokenizer is compared on (the names of
// hf_umt5_tokenize.py's VARIANTS): spiece.model alone, which transformers
// converts itself (no byte fallback), and tokenizer.json files of the kind
// google/umt5-xxl ships, without and with byte fallback (which spiece.model
// has and transformers' converter drops; which one the released tokenizer.json
// has is not known here), the latter with 3 <extra_id_N> tokens.
const char* const kHfVariants[] = {"spiece", "tokenizer-json", "tokenizer-json-byte-fallback"};

std::string hf_script() {
  const char* src = std::getenv("LA_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/unit/hf_umt5_tokenize.py";
}

std::vector<int64_t> row(const at::Tensor& t) {
  const at::Tensor r = t.reshape({-1}).to(at::kLong).contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

}  // namespace

// Ids and mask of Umt5Tokenizer::tokenize against the reference's
// AutoTokenizer call (padding='max_length', truncation=True) on the same
// spiece.model, at text_len 512 and 24 (truncating many prompts).
TEST_F(TokenizerTest, MatchesHuggingFaceFastTokenizer) {
  LA_REQUIRE_TORCH_PYTHON(py);
  std::vector<std::string> prompts = kPrompts;
  prompts.insert(prompts.end(), kHfPrompts.begin(), kHfPrompts.end());
  prompts.push_back(long_prompt());
  const size_t cluster = prompts.size();
  prompts.push_back(kClusterPrompt);
  prompts.push_back(kClusterImage);
  test::TempDir tmp;
  test::write_bytes(tmp.file("prompts.json"), nlohmann::json(prompts).dump());
  run(std::string(py) + " " + hf_script() + " variants " + tokenizer_dir() + " " + tmp.path().string() + " " +
      tmp.file("prompts.json") + " 512,24 " + tmp.file("hf.json") + " 2>" + tmp.file("hf.err"));
  ASSERT_TRUE(std::filesystem::exists(tmp.file("hf.json"))) << test::read_bytes(tmp.file("hf.err"));
  std::ifstream in(tmp.file("hf.json"));
  const auto hf = nlohmann::json::parse(in);
  for (const std::string variant : kHfVariants) {
    SCOPED_TRACE(variant);
    const std::string dir = variant == "spiece" ? tokenizer_dir() : tmp.file(variant);
    ASSERT_TRUE(hf.at(variant).at("fast").get<bool>()) << "AutoTokenizer did not load the fast tokenizer";
    for (const int64_t len : {512, 24}) {
      const auto& want = hf.at(variant).at(std::to_string(len));
      const auto want_ids = [&](size_t i) { return want.at("ids").at(i).get<std::vector<int64_t>>(); };
      models::Umt5Tokenizer tok(dir, len);
      for (size_t i = 0; i < cluster; ++i) {
        const auto t = tok.tokenize(prompts[i]);
        EXPECT_EQ(row(t.ids), want_ids(i)) << "text_len " << len << ", prompt " << i << ": " << prompts[i]
                                           << "\n  HF pieces: " << want.at("pieces").at(i).dump();
        EXPECT_EQ(row(t.mask), want.at("mask").at(i).get<std::vector<int64_t>>())
            << "text_len " << len << ", prompt " << i;
      }
      EXPECT_EQ(want_ids(cluster), want_ids(cluster + 1))
          << "HF no longer drops the second combining mark: update docs/text-and-audio.md and hf_unigram.h";
      EXPECT_EQ(row(tok.tokenize(kClusterImage).ids), want_ids(cluster + 1));
      EXPECT_NE(row(tok.tokenize(kClusterPrompt).ids), want_ids(cluster))
          << "we now match HF on this cluster: update docs/text-and-audio.md and hf_unigram.h";
    }
  }
}

TEST_F(TokenizerTest, TokenizerJsonOfAnotherModelIsAnError) {
  test::TempDir tmp;
  const std::string dir = tmp.file("tok");
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(tokenizer_dir() + "/spiece.model", dir + "/spiece.model");
  test::write_bytes(dir + "/tokenizer.json", R"({"model": {"type": "BPE", "vocab": {}}})");
  try {
    models::Umt5Tokenizer tok(dir, 16);
    FAIL() << "a BPE tokenizer.json was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/tokenizer.json: model type is not Unigram"), std::string::npos) << e.what();
  }
}

// Tokenizer files are untrusted: ids, counts and nesting are bounded with an
// error that names the file, never a huge allocation or a write out of range.
TEST_F(TokenizerTest, HostileTokenizerFilesAreClearErrors) {
  struct Case {
    std::string file, text, message;
  };
  const Case cases[] = {
      {"tokenizer.json",
       R"({"model": {"type": "Unigram", "unk_id": 2, "vocab": []}, "added_tokens": [{"content": "<x>", "id": -1}]})",
       "added token id -1 is outside 0.."},
      {"tokenizer.json",
       R"({"model": {"type": "Unigram", "unk_id": 2, "vocab": []}, "added_tokens": [{"content": "<x>", "id": 2147483647}]})",
       "added token id 2147483647 is outside 0.."},
      {"tokenizer_config.json", R"({"extra_ids": 2000000000})", "extra_ids 2000000000 is outside 0..65536"},
      {"tokenizer.json", std::string(100000, '[') + std::string(100000, ']'), "JSON nested deeper than 64"},
  };
  for (const auto& [file, text, message] : cases) {
    test::TempDir tmp;
    const std::string dir = tmp.file("tok");
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(tokenizer_dir() + "/spiece.model", dir + "/spiece.model");
    test::write_bytes(dir + "/" + file, text);
    try {
      models::Umt5Tokenizer tok(dir, 16);
      ADD_FAILURE() << file << " accepted: " << message;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(dir + "/" + file), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
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

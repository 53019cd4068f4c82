#include "engine/models/umt5/hf_unigram.h"

#include <sentencepiece_processor.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

#include "engine/io/json_depth.h"

namespace la::models {
namespace {

const std::string kMeta = "\xE2\x96\x81";  // U+2581, the fast tokenizer's and sentencepiece's space

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;  // a stray continuation byte: one byte, as a char of its own
}

bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// The tokenizer files are untrusted: bounded in size (the real tokenizer.json
// is about 16 MB) and in nesting (nlohmann parses recursively) before parsing.
constexpr std::uintmax_t kMaxTokenizerFileBytes = 256u << 20;
constexpr size_t kMaxJsonDepth = 64;
constexpr int64_t kMaxAddedTokens = 65536;

nlohmann::json read_json(const std::string& path, const nlohmann::json::parser_callback_t& keep = nullptr) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error("file " + path + ": cannot open (" + ec.message() + ")");
  if (size > kMaxTokenizerFileBytes)
    throw std::runtime_error("file " + path + ": " + std::to_string(size) + " bytes, more than the " +
                             std::to_string(kMaxTokenizerFileBytes) + " a tokenizer file may have");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("file " + path + ": cannot open");
  std::string text(static_cast<size_t>(size), '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size))) throw std::runtime_error("file " + path + ": cannot read");
  if (!io::json_depth_within(text, kMaxJsonDepth))
    throw std::runtime_error("file " + path + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth));
  try {
    return nlohmann::json::parse(text, keep);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("file " + path + ": not valid JSON: " + e.what());
  }
}

// A special token of tokenizer_config.json / special_tokens_map.json: a string
// or an AddedToken object.
std::string token_content(const nlohmann::json& t) {
  if (t.is_string()) return t.get<std::string>();
  if (t.is_object() && t.contains("content") && t["content"].is_string()) return t["content"].get<std::string>();
  return {};
}

// transformers' T5TokenizerFast also splits out its special tokens (eos, unk,
// pad, additional_special_tokens, and the extra_ids <extra_id_N> it makes up)
// when tokenizer.json's added_tokens lack them.
void add_special_tokens(const std::string& dir, const sentencepiece::SentencePieceProcessor& sp, HfTokenizerConfig& c) {
  std::vector<std::string> names = {"</s>", "<unk>", "<pad>"};  // T5TokenizerFast's defaults
  int extra = 0;
  for (const char* file : {"/tokenizer_config.json", "/special_tokens_map.json"}) {
    if (!std::filesystem::exists(dir + file)) continue;
    const auto j = read_json(dir + file);
    if (!j.is_object()) continue;
    for (const char* key : {"eos_token", "unk_token", "pad_token"})
      if (j.contains(key)) names.push_back(token_content(j[key]));
    if (j.contains("additional_special_tokens") && j["additional_special_tokens"].is_array())
      for (const auto& t : j["additional_special_tokens"]) names.push_back(token_content(t));
    if (j.contains("extra_ids") && j["extra_ids"].is_number_integer()) {
      const int64_t e = j["extra_ids"].get<int64_t>();
      if (e < 0 || e > kMaxAddedTokens)
        throw std::runtime_error("file " + dir + file + ": extra_ids " + std::to_string(e) + " is outside 0.." +
                                 std::to_string(kMaxAddedTokens));
      extra = static_cast<int>(e);
    }
  }
  for (int i = 0; i < extra; ++i) names.push_back("<extra_id_" + std::to_string(i) + ">");
  const int n = sp.GetPieceSize();
  for (const auto& name : names) {
    if (name.empty() || std::any_of(c.added_tokens.begin(), c.added_tokens.end(),
                                    [&](const AddedToken& t) { return t.content == name; }))
      continue;
    const int id = sp.PieceToId(name);
    if (id >= 0 && id < n && sp.IdToPiece(id) == name) {
      c.added_tokens.push_back({name, id});
    } else if (name.rfind("<extra_id_", 0) == 0 && extra > 0) {
      // T5's extra ids follow spiece.model's pieces, <extra_id_0> last.
      const int i = std::atoi(name.c_str() + 10);
      if (i >= 0 && i < extra) c.added_tokens.push_back({name, n + extra - 1 - i});
    }
    // Other tokens missing from the vocabulary would get new ids past it; umT5 has none.
  }
}

}  // namespace

HfTokenizerConfig read_hf_tokenizer_config(const std::string& dir, const sentencepiece::SentencePieceProcessor& sp) {
  HfTokenizerConfig c;
  const std::string tokenizer_json = dir + "/tokenizer.json";
  if (std::filesystem::exists(tokenizer_json)) {
    c.source = tokenizer_json;
    // The 256k-entry vocabulary is spiece.model's; skip it while parsing.
    const auto j = read_json(tokenizer_json, [](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
      return !(event == nlohmann::json::parse_event_t::key && depth == 2 && parsed == "vocab");
    });
    const auto fail = [&](const std::string& what) { return std::runtime_error("file " + tokenizer_json + ": " + what); };
    if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) throw fail("has no \"model\"");
    const auto& m = j["model"];
    if (m.value("type", std::string()) != "Unigram") throw fail("model type is not Unigram");
    if (!m.contains("unk_id") || !m["unk_id"].is_number_integer() || m["unk_id"].get<int>() != sp.unk_id())
      throw fail("model unk_id differs from spiece.model's " + std::to_string(sp.unk_id()));
    c.byte_fallback = m.value("byte_fallback", false);
    if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
      for (const auto& t : j["added_tokens"]) {
        if (!t.is_object() || !t.contains("content") || !t["content"].is_string() || !t.contains("id") ||
            !t["id"].is_number_integer())
          throw fail("an added_tokens entry lacks content or id");
        // Ids index the score table and the embedding: bounded (umT5's
        // extra ids sit right after the pieces).
        const int64_t id = t["id"].get<int64_t>();
        if (id < 0 || id >= static_cast<int64_t>(sp.GetPieceSize()) + kMaxAddedTokens)
          throw fail("added token id " + std::to_string(id) + " is outside 0.." +
                     std::to_string(sp.GetPieceSize() + kMaxAddedTokens - 1));
        c.added_tokens.push_back({t["content"].get<std::string>(), static_cast<int>(id), t.value("lstrip", false),
                                  t.value("rstrip", false)});
      }
    }
  } else {
    c.source = dir + "/spiece.model (converted as transformers' T5 converter does)";
    for (int i = 0; i < sp.GetPieceSize(); ++i)
      if (sp.IsControl(i)) c.added_tokens.push_back({sp.IdToPiece(i), i});
  }
  add_special_tokens(dir, sp, c);
  return c;
}

HfUnigram::HfUnigram(const sentencepiece::SentencePieceProcessor& sp, HfTokenizerConfig config)
    : sp_(sp), config_(std::move(config)) {
  // The fast tokenizer's vocabulary: every piece of spiece.model (control, byte
  // and unused ones too), then the added tokens it lacks, with score 0.
  const int n = sp_.GetPieceSize();
  double min_score = std::numeric_limits<double>::infinity();
  const auto add = [&](const std::string& piece, int id, double score) {
    ids_[piece] = id;
    if (static_cast<size_t>(id) >= scores_.size()) scores_.resize(static_cast<size_t>(id) + 1, 0.0);
    scores_[static_cast<size_t>(id)] = score;
    max_piece_bytes_ = std::max(max_piece_bytes_, piece.size());
    min_score = std::min(min_score, score);
  };
  for (int i = 0; i < n; ++i) add(sp_.IdToPiece(i), i, static_cast<double>(sp_.GetScore(i)));
  for (const auto& t : config_.added_tokens)
    if (t.id >= n && !ids_.count(t.content)) add(t.content, t.id, 0.0);
  unk_score_ = min_score - 10.0;  // tokenizers' K_UNK_PENALTY, as sentencepiece's kUnkPenalty
  unk_id_ = sp_.unk_id();
  all_bytes_ = true;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = ids_.find(name);
    byte_ids_[b] = it == ids_.end() ? -1 : it->second;
    all_bytes_ = all_bytes_ && it != ids_.end();
  }
}

std::string HfUnigram::normalize(const std::string& segment) const {
  // libsentencepiece 0.1.97 has no Normalize(); its pieces spell the normalised
  // text (unknown characters as themselves or as byte pieces).
  std::string out;
  const auto spt = sp_.EncodeAsImmutableProto(segment);  // owns what pieces() points into
  for (const auto& p : spt.pieces()) {
    if (sp_.IsByte(static_cast<int>(p.id())) && p.piece().size() == 6)
      out.push_back(static_cast<char>(std::stoi(p.piece().substr(3, 2), nullptr, 16)));
    else
      out += p.piece();
  }
  // Metaspace(prepend_scheme="always"), whatever the model's add_dummy_prefix.
  if (!out.empty() && out.compare(0, kMeta.size(), kMeta) != 0) out.insert(0, kMeta);
  return out;
}

void HfUnigram::encode_normalized(const std::string& s, std::vector<int>& out) const {
  // Metaspace(split=true): a word starts at every U+2581, and the Unigram model
  // runs on each word by itself.
  for (size_t word = 0; word < s.size();) {
    size_t next = s.find(kMeta, word + 1);
    if (next == std::string::npos) next = s.size();
    const size_t len = next - word;
    // tokenizers' Unigram::encode_optimized: the best path ending at each byte,
    // scores in double, a later start replacing an earlier one only when
    // strictly better.
    struct Best {
      double score = 0;
      long start = -1;
      int id = -1;
    };
    std::vector<Best> best(len + 1);
    for (size_t start = 0; start < len;) {
      const double here = best[start].score;
      const size_t mblen = std::min(utf8_length(static_cast<unsigned char>(s[word + start])), len - start);
      bool has_single = false;
      // Every piece that starts here (the trie's common-prefix search).
      for (size_t end = start + mblen; end - start <= max_piece_bytes_;) {
        const auto it = ids_.find(s.substr(word + start, end - start));
        if (it != ids_.end()) {
          const double score = here + scores_[static_cast<size_t>(it->second)];
          if (best[end].start < 0 || score > best[end].score) best[end] = {score, static_cast<long>(start), it->second};
          if (end - start == mblen) has_single = true;
        }
        if (end == len) break;
        end += std::min(utf8_length(static_cast<unsigned char>(s[word + end])), len - end);
      }
      if (!has_single) {
        const double score = here + unk_score_;
        Best& b = best[start + mblen];
        if (b.start < 0 || score > b.score) b = {score, static_cast<long>(start), unk_id_};
      }
      start += mblen;
    }
    // Back to front; runs of unknowns fuse into one token (fuse_unk).
    std::vector<std::string> tokens;
    std::string unknown;
    for (size_t end = len; end > 0;) {
      const Best& b = best[end];
      const std::string piece = s.substr(word + static_cast<size_t>(b.start), end - static_cast<size_t>(b.start));
      if (b.id == unk_id_) {
        unknown.insert(0, piece);
      } else {
        if (!unknown.empty()) tokens.push_back(std::move(unknown)), unknown.clear();
        tokens.push_back(piece);
      }
      end = static_cast<size_t>(b.start);
    }
    if (!unknown.empty()) tokens.push_back(std::move(unknown));
    for (auto t = tokens.rbegin(); t != tokens.rend(); ++t) {
      const auto it = ids_.find(*t);
      if (it != ids_.end()) {
        out.push_back(it->second);
      } else if (config_.byte_fallback && all_bytes_) {
        for (unsigned char c : *t) out.push_back(byte_ids_[c]);
      } else {
        out.push_back(unk_id_);
      }
    }
    word = next;
  }
}

std::vector<int> HfUnigram::encode(const std::string& text) const {
  std::vector<int> out;
  size_t segment = 0;
  for (size_t i = 0; i < text.size();) {
    const AddedToken* match = nullptr;
    for (const auto& t : config_.added_tokens)
      if (!t.content.empty() && (!match || t.content.size() > match->content.size()) &&
          text.compare(i, t.content.size(), t.content) == 0)
        match = &t;
    if (!match) {
      ++i;
      continue;
    }
    size_t before = i;
    if (match->lstrip)
      while (before > segment && is_ascii_space(text[before - 1])) --before;
    encode_normalized(normalize(text.substr(segment, before - segment)), out);
    out.push_back(match->id);
    i += match->content.size();
    if (match->rstrip)
      while (i < text.size() && is_ascii_space(text[i])) ++i;
    segment = i;
  }
  encode_normalized(normalize(text.substr(segment)), out);
  return out;
}

}  // namespace la::models

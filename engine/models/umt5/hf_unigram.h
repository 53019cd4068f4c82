// The reference tokenizes prompts with Hugging Face's fast tokenizer
// (AutoTokenizer on google/umt5-xxl: the `tokenizers` Unigram model of
// tokenizer.json, which transformers converts from spiece.model). This
// reproduces it on top of libsentencepiece's normaliser and vocabulary, because
// libsentencepiece's own Encode gives other ids in these cases (each one is
// checked against transformers in tests/unit/test_umt5_tokenizer.cpp):
//
//  1. Unknown characters. spiece.model has byte fallback, but transformers'
//     T5 converter drops it: unless tokenizer.json says "byte_fallback": true,
//     a run of characters missing from the vocabulary is one <unk>, where
//     sentencepiece gives their UTF-8 byte pieces.
//  2. Segmentations of equal score ("000" as "0"+"00" or "00"+"0"): the fast
//     tokenizer adds scores in double precision, where such ties are exact and
//     the longest last piece wins; sentencepiece adds them in float, whose
//     rounding picks either.
//  3. Special tokens typed in the prompt ("</s>", "<pad>", "<unk>",
//     "<extra_id_N>") are those tokens for the fast tokenizer, which splits them
//     out before normalising; sentencepiece spells them out.
//  4. The fast tokenizer's vocabulary trie holds every piece, byte and control
//     pieces included: "<0x41>" typed in a prompt is the byte piece.
//
// Not reproduced: the fast tokenizer applies the normalisation map
// (Precompiled) per grapheme cluster, sentencepiece by longest match. They agree
// on every single code point but not on some clusters of several code points:
// a cluster under 6 bytes that starts with a mapped sequence becomes that
// sequence's image ("a" + grave + acute gives "à", the acute is lost), and one
// of 6 bytes or more is mapped code point by code point (conjoining Hangul
// jamo, "न" + nukta stay uncomposed) (docs/text-and-audio.md).
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sentencepiece { class SentencePieceProcessor; }

namespace la::models {

struct AddedToken {
  std::string content;
  int id = 0;
  bool lstrip = false, rstrip = false;  // absorb the whitespace on that side
};

struct HfTokenizerConfig {
  bool byte_fallback = false;
  // Matched in the raw text (leftmost, then longest) and split out before
  // normalising, as the fast tokenizer's added vocabulary does.
  std::vector<AddedToken> added_tokens;
  std::string source;  // where this came from, for messages
};

// DIR/tokenizer.json when present ("model": type, unk_id, byte_fallback;
// "added_tokens"); else what transformers' T5 converter makes of spiece.model:
// no byte fallback, the control pieces as added tokens. Either way, as
// T5TokenizerFast does on loading, the special tokens of
// tokenizer_config.json / special_tokens_map.json (eos, unk, pad,
// additional_special_tokens, and the "extra_ids" <extra_id_N>) are added too.
// Throws std::runtime_error naming the file.
HfTokenizerConfig read_hf_tokenizer_config(const std::string& dir, const sentencepiece::SentencePieceProcessor& sp);

class HfUnigram {
 public:
  HfUnigram(const sentencepiece::SentencePieceProcessor& sp, HfTokenizerConfig config);

  // Ids of already-cleaned text, without '</s>'.
  std::vector<int> encode(const std::string& text) const;
  const HfTokenizerConfig& config() const { return config_; }

 private:
  // sentencepiece's normalisation of one segment: the charsmap, whitespace
  // collapsed and trimmed, spaces as U+2581 with one in front.
  std::string normalize(const std::string& segment) const;
  void encode_normalized(const std::string& normalized, std::vector<int>& out) const;

  const sentencepiece::SentencePieceProcessor& sp_;
  HfTokenizerConfig config_;
  std::unordered_map<std::string, int> ids_;
  std::vector<double> scores_;
  size_t max_piece_bytes_ = 0;
  double unk_score_ = 0;
  int unk_id_ = 0;
  int byte_ids_[256];
  bool all_bytes_ = false;
};

}  // namespace la::models

// The prompt tokenizer of the umT5 encoder: the reference's cleaning, then the
// SentencePiece model of google/umt5-xxl/spiece.model, '</s>' appended,
// truncated and padded to text_len like HF's padding='max_length',
// truncation=True.
//
// The reference goes through HF's fast tokenizer (tokenizer.json), converted
// from this same SentencePiece model; this reads spiece.model and gives the
// fast tokenizer's ids (HfUnigram, engine/models/umt5/hf_unigram.h), taking
// its settings from tokenizer.json when the directory has one.
#pragma once

#include <ATen/core/Tensor.h>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece { class SentencePieceProcessor; }

namespace la::models {

class HfUnigram;

struct TokenizedPrompt {
  at::Tensor ids;   // [1, text_len] int64, pad id after the tokens
  at::Tensor mask;  // [1, text_len] int64, 1 on real tokens (including '</s>')
  int64_t length;   // real tokens
  bool truncated;   // the prompt did not fit in text_len
};

class Umt5Tokenizer {
 public:
  // dir: google/umt5-xxl/ (spiece.model). Throws std::runtime_error naming the file.
  Umt5Tokenizer(const std::string& dir, int64_t text_len);
  ~Umt5Tokenizer();

  TokenizedPrompt tokenize(const std::string& prompt) const;
  // Ids of already-cleaned text, without '</s>' (HF's fast tokenizer's).
  std::vector<int> encode_clean(const std::string& cleaned) const;
  int64_t text_len() const { return text_len_; }
  int vocab_size() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::unique_ptr<HfUnigram> hf_;
  int64_t text_len_;
};

}  // namespace la::models

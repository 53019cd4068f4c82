#include "engine/models/umt5/tokenizer.h"

#include <ATen/ATen.h>
#include <sentencepiece_processor.h>
#include <algorithm>
#include <stdexcept>

#include "engine/models/umt5/hf_unigram.h"
#include "engine/text/prompt_cleaning.h"

namespace la::models {

Umt5Tokenizer::Umt5Tokenizer(const std::string& dir, int64_t text_len)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), text_len_(text_len) {
  const std::string path = dir + "/spiece.model";
  const auto status = sp_->Load(path);
  if (!status.ok()) throw std::runtime_error("file " + path + ": cannot load the tokenizer: " + status.ToString());
  if (text_len < 1) throw std::invalid_argument("text_len must be positive");
  if (sp_->eos_id() < 0 || sp_->pad_id() < 0)
    throw std::runtime_error("file " + path + ": the tokenizer defines no </s> or <pad> token");
  hf_ = std::make_unique<HfUnigram>(*sp_, read_hf_tokenizer_config(dir, *sp_));
}

Umt5Tokenizer::~Umt5Tokenizer() = default;

int Umt5Tokenizer::vocab_size() const { return sp_->GetPieceSize(); }

std::vector<int> Umt5Tokenizer::encode_clean(const std::string& cleaned) const {
  return hf_->encode(cleaned);
}

TokenizedPrompt Umt5Tokenizer::tokenize(const std::string& prompt) const {
  std::vector<int> pieces = encode_clean(text::clean_prompt(prompt));
  // HF truncation keeps room for the '</s>' it appends.
  const bool truncated = static_cast<int64_t>(pieces.size()) > text_len_ - 1;
  if (truncated) pieces.resize(static_cast<size_t>(text_len_ - 1));
  pieces.push_back(sp_->eos_id());
  TokenizedPrompt t;
  t.length = static_cast<int64_t>(pieces.size());
  t.truncated = truncated;
  std::vector<int64_t> ids(static_cast<size_t>(text_len_), sp_->pad_id());
  std::copy(pieces.begin(), pieces.end(), ids.begin());
  t.ids = at::tensor(ids, at::kLong).view({1, text_len_});
  t.mask = at::zeros({1, text_len_}, at::kLong);
  t.mask.slice(1, 0, t.length).fill_(1);
  return t;
}

}  // namespace la::models

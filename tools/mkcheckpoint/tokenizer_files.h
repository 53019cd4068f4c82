// Writes a small SentencePiece tokenizer directory in the layout of
// google/umt5-xxl/: spiece.model (unigram, pad 0 / eos 1 / unk 2, byte
// fallback like umT5), special_tokens_map.json and tokenizer_config.json.
// The HF fast-tokenizer tokenizer.json of the real directory is not written:
// nothing here reads it (the engine uses spiece.model through libsentencepiece).
#pragma once

#include <string>

namespace la::tools {

// Trains on a built-in multilingual corpus; returns the piece count.
// Throws std::runtime_error if training fails.
int write_tokenizer_dir(const std::string& dir, int pieces, int64_t model_max_length);

}  // namespace la::tools

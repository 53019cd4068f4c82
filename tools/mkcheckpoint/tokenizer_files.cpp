#include "tools/mkcheckpoint/tokenizer_files.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <stdexcept>
#include <vector>

#include "tools/mkcheckpoint/training_corpus.h"

namespace la::tools {
namespace {

class CorpusIterator : public sentencepiece::SentenceIterator {
 public:
  explicit CorpusIterator(const std::vector<std::string>& lines) : lines_(lines) {}
  bool done() const override { return i_ >= lines_.size(); }
  void Next() override { ++i_; }
  const std::string& value() const override { return lines_[i_]; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<std::string>& lines_;
  size_t i_ = 0;
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int write_tokenizer_dir(const std::string& dir, int pieces, int64_t model_max_length) {
  const auto lines = training_corpus();
  CorpusIterator it(lines);
  std::string model;
  const std::string args =
      "--model_type=unigram --vocab_size=" + std::to_string(pieces) +
      " --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1 --byte_fallback=true"
      " --character_coverage=1.0 --hard_vocab_limit=false --num_threads=1"
      " --minloglevel=2 --seed_sentencepiece_size=100000";
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &model);
  if (!status.ok()) throw std::runtime_error("SentencePiece training failed: " + status.ToString());
  write_text(dir + "/spiece.model", model);

  sentencepiece::SentencePieceProcessor sp;
  if (!sp.LoadFromSerializedProto(model).ok()) throw std::runtime_error("trained model does not load");

  const nlohmann::ordered_json special = {
      {"eos_token", "</s>"}, {"pad_token", "<pad>"}, {"unk_token", "<unk>"}};
  write_text(dir + "/special_tokens_map.json", special.dump(2) + "\n");
  const nlohmann::ordered_json config = {
      {"tokenizer_class", "T5Tokenizer"}, {"eos_token", "</s>"}, {"pad_token", "<pad>"},
      {"unk_token", "<unk>"}, {"extra_ids", 0}, {"model_max_length", model_max_length},
      {"sp_model_kwargs", nlohmann::ordered_json::object()}};
  write_text(dir + "/tokenizer_config.json", config.dump(2) + "\n");
  return sp.GetPieceSize();
}

}  // namespace la::tools

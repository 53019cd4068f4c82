// A few hundred lines of mixed-language text to train the tiny tokenizer on.
#pragma once

#include <string>
#include <vector>

namespace la::tools {

std::vector<std::string> training_corpus();

}  // namespace la::tools

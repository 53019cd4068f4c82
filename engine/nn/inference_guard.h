// Inference mode for a model's forward code, unless the model was built to
// record autograd (tools/miniature trains through the engine's own forward
// code): then the caller's grad mode stands, so a NoGradGuard around a
// training model still records nothing. (c10::InferenceMode(false) would
// instead switch grad mode on.)
#pragma once

#include <c10/core/InferenceMode.h>
#include <optional>

namespace la::nn {

class InferenceGuard {
 public:
  explicit InferenceGuard(bool record_autograd) {
    if (!record_autograd) guard_.emplace();
  }

 private:
  std::optional<c10::InferenceMode> guard_;
};

}  // namespace la::nn

// The data.pkl of a torch.save'd state dict, read by a restricted unpickler
// that understands only what state dicts contain (dicts, tensors and plain
// scalars) and never constructs arbitrary objects; and written back the way
// torch.save pickles an OrderedDict of tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/io/dtype.h"

namespace la::io {

struct PickledTensor {
  std::string name;  // nested dict keys joined with '.'
  DType dtype = DType::F32;
  std::string storage_key;              // the zip record <prefix>/data/<storage_key>
  int64_t storage_numel = 0;            // elements of `dtype` in the whole storage
  int64_t storage_offset = 0;           // in elements
  std::vector<int64_t> shape, strides;  // strides in elements
};

struct PickledStateDict {
  std::vector<PickledTensor> tensors;  // in pickle order
  // Names of leaves that are not tensors (ints, strings, lists, None, ...):
  // accepted and not loaded.
  std::vector<std::string> skipped;
};

// Interprets `data` (the bytes of data.pkl). The top-level object must be a
// dict; nested dicts are flattened. Validates every tensor's view against its
// storage and that tensors sharing a storage agree on its dtype and size.
// Throws CheckpointError naming `file` (and the tensor, where one is involved).
PickledStateDict unpickle_state_dict(const uint8_t* data, size_t size, const std::string& file);

// The protocol-2 pickle that torch.save writes for an OrderedDict of these
// tensors (in order), memo numbering included; torch.load(weights_only=True)
// accepts it. Throws CheckpointError (file "<pickle>") on invalid input.
std::string pickle_state_dict(const std::vector<PickledTensor>& tensors);

}  // namespace la::io

// libFuzzer target for the .pth reader: any input must either parse or throw
// CheckpointError; anything else (a crash, a sanitizer report, another
// exception) is a bug.
#include <cstddef>
#include <cstdint>

#include "engine/io/checkpoint_error.h"
#include "engine/io/pickle_state_dict.h"
#include "engine/io/pth_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    la::io::parse_pth(data, size, "fuzz.pth");
  } catch (const la::io::CheckpointError&) {
  }
  // The same bytes as a bare data.pkl: a random zip rarely reaches the pickle.
  try {
    la::io::unpickle_state_dict(data, size, "fuzz.pth");
  } catch (const la::io::CheckpointError&) {
  }
  return 0;
}

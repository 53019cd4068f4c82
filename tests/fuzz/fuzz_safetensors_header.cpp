// libFuzzer target: the safetensors header parser on arbitrary bytes. The only
// acceptable outcomes are a parsed header or a CheckpointError.
#include <cstddef>
#include <cstdint>

#include "engine/io/checkpoint_error.h"
#include "engine/io/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto h = la::io::parse_safetensors_header(data, size, "fuzz.safetensors");
    for (const auto& e : h.entries)
      if (e.end > size || e.begin > e.end) __builtin_trap();  // bounds must hold for every accepted entry
  } catch (const la::io::CheckpointError&) {
  }
  return 0;
}

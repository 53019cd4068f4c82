// Reads a mono 16 kHz WAV (PCM 16-bit or IEEE float 32-bit) into floats.
#pragma once

#include <string>
#include <vector>

namespace la::tools {

// Throws std::runtime_error naming the file and what is wrong with it.
std::vector<float> read_wav_16k_mono(const std::string& path);

}  // namespace la::tools

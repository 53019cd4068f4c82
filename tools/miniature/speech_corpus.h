// The miniature's speech: sentences spoken by espeak-ng in several voices and
// speeds, joined with pauses, at 16 kHz. Deterministic from a seed (espeak-ng
// itself is deterministic). Some sentences and one voice are held out of
// training, for the lip-sync test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace la::miniature {

struct SpeechClip {
  std::vector<float> samples;  // 16 kHz mono in [-1, 1]
  std::string description;     // voice, speed and text, for logs
};

// One sentence by espeak-ng (`voice` as -v, `speed` words per minute, `pitch`
// 0..99), resampled to 16 kHz. Throws std::runtime_error when espeak-ng is
// missing or fails.
std::vector<float> speak(const std::string& text, const std::string& voice, int speed, int pitch);

// A clip of `sentences` sentences with pauses of 0.2..1.2 s between them and
// up to 0.5 s of silence before the first: from the training sentences and
// voices, or (held_out) from the held-out ones.
SpeechClip make_speech_clip(uint64_t seed, bool held_out, int sentences);

// Writes 16-bit PCM mono WAV at 16 kHz.
void write_wav(const std::string& path, const std::vector<float>& samples);

}  // namespace la::miniature

// A speech-like test signal for the live benchmarks: harmonics of 140 Hz at
// 16 kHz, loud enough for the audio features to see a voice.
#pragma once

#include <cmath>
#include <cstdint>

namespace la::tools {

// Sample i (16 kHz) of the signal.
inline float voiced_sample(int64_t i) {
  const double t = static_cast<double>(i) / 16000.0;
  double v = 0;
  for (int h = 1; h <= 5; ++h) v += std::sin(2 * M_PI * 140.0 * h * t) / h;
  return static_cast<float>(0.3 * v);
}

}  // namespace la::tools

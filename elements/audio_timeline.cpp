#include "elements/audio_timeline.h"

#include <algorithm>

namespace la::elements {
namespace {

constexpr uint64_t kSecond = 1'000'000'000;

// Whole samples in `ns` (rounded to the nearest), without overflow for any
// time a stream can reach (128-bit intermediate).
int64_t samples_in(uint64_t ns, int rate) {
  return static_cast<int64_t>((static_cast<unsigned __int128>(ns) * static_cast<unsigned>(rate) + kSecond / 2) /
                              kSecond);
}

}  // namespace

uint64_t AudioTimeline::next_time() const {
  return t0_ + static_cast<uint64_t>(static_cast<unsigned __int128>(samples_) * kSecond / static_cast<unsigned>(rate_));
}

AudioTimeline::Placement AudioTimeline::place(uint64_t pts, int64_t count) const {
  Placement p;
  const uint64_t expected = next_time();
  if (pts > expected + tolerance_ns_) {
    p.silence = samples_in(pts - expected, rate_);
  } else if (pts + tolerance_ns_ < expected) {
    p.drop = std::min(count, samples_in(expected - pts, rate_));
  }
  return p;
}

int64_t AudioTimeline::samples_until(uint64_t time) const {
  const uint64_t expected = next_time();
  return time > expected ? samples_in(time - expected, rate_) : 0;
}

}  // namespace la::elements

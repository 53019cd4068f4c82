// Where live audio samples belong in time, for laaudiofeat's streaming mode:
// blocks follow the audio's timestamps, not a count of samples.
//
// An utterance starts at the time of its first sample (t0); sample i of it
// then sits at t0 + i / rate. A buffer stamped later than the next expected
// time by more than the tolerance (the source paused: a TTS between
// sentences, a muted call, lost packets) is placed at its own time, and the
// time between is filled with silence; one stamped earlier (it overlaps time
// already covered, e.g. by silence the idle filler added) loses its leading
// samples. Either way block b keeps covering [t0 + 0.48 b, t0 + 0.48 (b+1)),
// so the video stays continuous and frame n still shows the audio at its PTS.
// Jitter within the tolerance is ignored (GStreamer's audio sinks use the same
// 40 ms default as their alignment threshold).
//
// Times in nanoseconds. GStreamer-free; not thread-safe.
#pragma once

#include <cstdint>

namespace la::elements {

class AudioTimeline {
 public:
  static constexpr uint64_t kDefaultToleranceNs = 40'000'000;

  explicit AudioTimeline(int rate = 16000, uint64_t tolerance_ns = kDefaultToleranceNs)
      : rate_(rate), tolerance_ns_(tolerance_ns) {}

  // What to do with `count` samples stamped `pts`: insert `silence` samples
  // first, and/or skip the first `drop` of them (drop <= count).
  struct Placement {
    int64_t silence = 0;
    int64_t drop = 0;
  };

  bool started() const { return started_; }
  // The utterance starts at `t0` (its first sample's time).
  void start(uint64_t t0) {
    started_ = true;
    t0_ = t0;
    samples_ = 0;
  }
  void reset() { started_ = false, samples_ = 0; }

  uint64_t t0() const { return t0_; }
  int64_t samples() const { return samples_; }
  // Time of the next sample of the utterance.
  uint64_t next_time() const;

  // Placement of a buffer (the utterance must have started).
  Placement place(uint64_t pts, int64_t count) const;
  // Silence samples that bring the utterance up to `time` (0 if it is there already).
  int64_t samples_until(uint64_t time) const;
  // `n` samples (audio or silence) were added to the utterance.
  void advance(int64_t n) { samples_ += n; }

 private:
  int rate_;
  uint64_t tolerance_ns_;
  bool started_ = false;
  uint64_t t0_ = 0;
  int64_t samples_ = 0;
};

}  // namespace la::elements

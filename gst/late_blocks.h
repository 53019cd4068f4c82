// The slow-hardware policy of a live pipeline (DESIGN §5, docs/live-streaming.md):
// when generation runs slower than real time, skip whole blocks that would
// reach the sinks after their time, so that the delay between the audio and
// the video stays bounded instead of growing with every block.
//
//   LateBlocks late;
//   if (late.should_skip(element, segment, pts, latency)) { push a GAP; return; }
//
// A block is late when it starts later than its audio's running time plus the
// latency of everything upstream (the part of the pipeline latency spent
// before us) by more than the slack our own reported latency leaves: the
// largest processing time measured minus what a block takes now. Its frames
// would then come after the time the pipeline latency promised the sinks.
// Skipping it costs nothing, so one skip wins back a whole block of time; the
// decoder fills its frames with the last frame, so the video stays continuous
// at 25 fps and in sync with the audio. Only in live pipelines with a clock;
// never for files (there is no deadline, and every block is generated).
#pragma once

#include <gst/gst.h>

#include <cstdint>

#include "gst/block_latency.h"

namespace la::gst {

class LateBlocks {
 public:
  // True when the block at `pts` (in `segment`) should be skipped: `element`
  // is PLAYING in a live pipeline (`latency.live()`) and the block is late as
  // above. Counts and logs each skip.
  bool should_skip(GstElement* element, const GstSegment& segment, GstClockTime pts, GstClockTime duration,
                   const BlockLatency& latency);
  // How late the last block checked started (negative: early), for logs and tests.
  GstClockTimeDiff last_lateness() const { return last_lateness_; }
  uint64_t skipped() const { return skipped_; }
  void restart() {
    skipped_ = 0;
    last_lateness_ = 0;
  }

 private:
  uint64_t skipped_ = 0;
  GstClockTimeDiff last_lateness_ = 0;
};

}  // namespace la::gst

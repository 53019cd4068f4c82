// What an element that works a block at a time adds to a live pipeline's
// latency, measured, and whether it keeps up with real time (DESIGN §5).
// liveavatargen and lavaedecode share it.
//
//   BlockLatency lat(0);                         // nothing held before work starts
//   if (lat.record(seconds, 480 * GST_MSECOND))  // after each block
//     gst_element_post_message(e, gst_message_new_latency(GST_OBJECT(e)));
//   ... LATENCY query: lat.answer(query)
//
// The latency is `buffering` plus the processing time of a block: the
// largest time measured after the first block (which pays for warm-up), so
// nothing until the second block; it only grows. Each growth is for a
// LATENCY message, which makes the pipeline re-query and live sinks
// re-configure, so frames are not dropped as late when the hardware keeps up.
// Why it never shrinks, and starts from nothing rather than a guess: a
// syncing sink that learns a smaller latency mid-stream has frames waiting
// for the larger one, and every frame after them is late by the difference
// (with a guess of one block per element, then the measured times, a sink
// that drops late frames dropped 26 of 84 at 64x64). Starting from nothing
// makes only the first block's frames late, by its warm-up.
// record() and answer() may be called from different threads.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <cstdint>

namespace la::gst {

class BlockLatency {
 public:
  explicit BlockLatency(GstClockTime buffering = 0) : buffering_(buffering) {}
  // What the element holds before work on a block starts (e.g. the blocks a
  // multi-device pipeline keeps in flight); set before streaming.
  void set_buffering(GstClockTime buffering) { buffering_ = buffering; }

  // A block of `media` duration took `seconds` of wall time. True when the
  // latency to report grew (post a LATENCY message).
  bool record(double seconds, GstClockTime media);
  // Forgets the measurements (a new stream); the reported latency stays.
  void restart();

  GstClockTime latency() const { return buffering_ + processing_.load(); }
  // Wall time per media time, smoothed over the last blocks (>1: slower than real time).
  double real_time_factor() const { return rtf_.load(); }
  // True once per stream, when the real-time factor has stayed above 1 for
  // three blocks in a row, or is above 1 while blocks are being skipped
  // (`skipping`: then too few blocks are computed for three in a row): time
  // to warn that live output cannot keep up.
  bool fell_behind(bool skipping);
  // In a live pipeline, once per stream: a warning on the bus that `element`
  // runs slower than real time, with the real-time factor, `doing` (what it
  // computes, at which size) and `cheaper` (what to change).
  void warn_if_behind(GstElement* element, const char* doing, const char* cheaper, bool skipping = false);

  // Answers an upstream-answered LATENCY query: adds latency(); notes whether
  // the pipeline is live (read by live()) and upstream's minimum latency.
  void answer(GstQuery* query);
  bool live() const { return live_.load(); }
  // The latency of everything before this element (the last query's minimum, before ours).
  GstClockTime upstream() const { return upstream_.load(); }
  // What the next block is expected to take: the last measured time after the
  // warm-up block, or the reported processing time until one is measured.
  GstClockTime expected_processing() const { return blocks_ > 1 ? last_ : processing_.load(); }
  GstClockTime processing() const { return processing_.load(); }

 private:
  std::atomic<GstClockTime> buffering_;
  std::atomic<GstClockTime> processing_{0};
  std::atomic<double> rtf_{0};
  std::atomic<bool> live_{false};
  std::atomic<GstClockTime> upstream_{0};
  GstClockTime last_ = 0;  // the last block's measured time
  uint64_t blocks_ = 0;
  GstClockTime worst_ = 0;  // largest measured processing time (after the first block)
  int slow_in_a_row_ = 0;
  bool warned_ = false;
};

}  // namespace la::gst

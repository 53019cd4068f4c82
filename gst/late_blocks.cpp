#include "gst/late_blocks.h"

#include "gst/running_time_ticker.h"

GST_DEBUG_CATEGORY_STATIC(la_late_blocks_debug);
#define GST_CAT_DEFAULT la_late_blocks_debug

namespace la::gst {

namespace {
constexpr GstClockTimeDiff kJitter = 20 * GST_MSECOND;
}  // namespace

bool LateBlocks::should_skip(GstElement* element, const GstSegment& segment, GstClockTime pts,
                             GstClockTime duration, const BlockLatency& latency) {
  static const bool category_ready = [] {
    GST_DEBUG_CATEGORY_INIT(la_late_blocks_debug, "lalateblocks", 0, "liveavatar late-block policy");
    return true;
  }();
  (void)category_ready;
  if (!latency.live() || !GST_CLOCK_TIME_IS_VALID(pts) || segment.format != GST_FORMAT_TIME) return false;
  const GstClockTime now = running_time_now(element);
  const GstClockTime block = gst_segment_to_running_time(&segment, GST_FORMAT_TIME, pts);
  if (!GST_CLOCK_TIME_IS_VALID(now) || !GST_CLOCK_TIME_IS_VALID(block)) return false;
  // When the block should start at the latest: its audio's running time plus
  // what upstream's latency allows for getting it here.
  const GstClockTimeDiff lateness = GST_CLOCK_DIFF(block + latency.upstream(), now);
  // Our reported latency covers up to processing() of work; what the block is
  // expected to take leaves the difference for starting late, and half a
  // frame more is jitter a syncing video sink tolerates (its max-lateness is
  // 20 ms), not worth a block of video.
  const GstClockTimeDiff slack =
      GST_CLOCK_DIFF(latency.expected_processing(), latency.processing()) + kJitter;
  last_lateness_ = lateness;
  if (lateness <= slack) {
    GST_LOG_OBJECT(element, "block at %" GST_TIME_FORMAT " starts %" GST_STIME_FORMAT " late (slack %" GST_STIME_FORMAT
                   ")", GST_TIME_ARGS(pts), GST_STIME_ARGS(lateness), GST_STIME_ARGS(slack));
    return false;
  }
  ++skipped_;
  GST_INFO_OBJECT(element,
                  "skipping the block at %" GST_TIME_FORMAT " (%" GST_TIME_FORMAT "): it starts %" GST_STIME_FORMAT
                  " after its time and would take %" GST_TIME_FORMAT ", %" GST_STIME_FORMAT
                  " more than the latency allows; %" G_GUINT64_FORMAT " skipped so far",
                  GST_TIME_ARGS(pts), GST_TIME_ARGS(duration), GST_STIME_ARGS(lateness),
                  GST_TIME_ARGS(latency.expected_processing()), GST_STIME_ARGS(lateness - slack), skipped_);
  return true;
}

}  // namespace la::gst

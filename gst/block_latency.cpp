#include "gst/block_latency.h"

#include <algorithm>

#include "gst/pad_queries.h"

namespace la::gst {
namespace {

// Measured times are rounded up to 10 ms, so small jitter posts no message.
constexpr GstClockTime kStep = 10 * GST_MSECOND;

}  // namespace

bool BlockLatency::record(double seconds, GstClockTime media) {
  ++blocks_;
  if (media > 0) {
    const double factor = seconds * GST_SECOND / static_cast<double>(media);
    rtf_ = blocks_ == 1 ? factor : 0.75 * rtf_.load() + 0.25 * factor;
    slow_in_a_row_ = factor > 1.0 ? slow_in_a_row_ + 1 : 0;
  }
  const auto measured = static_cast<GstClockTime>(seconds * GST_SECOND);
  last_ = measured;
  if (blocks_ == 1) return false;  // warm-up: allocations, the DiT's sink prefill
  worst_ = std::max(worst_, (measured + kStep - 1) / kStep * kStep);
  if (worst_ <= processing_.load()) return false;
  processing_ = worst_;
  return true;
}

void BlockLatency::warn_if_behind(GstElement* element, const char* doing, const char* cheaper, bool skipping) {
  if (!live() || !fell_behind(skipping)) return;
  GST_ELEMENT_WARNING(element, STREAM, FAILED,
                      ("%s is slower than real time: real-time factor %.2f (a 0.48 s block takes %.2f s)", doing,
                       real_time_factor(), real_time_factor() * 0.48),
                      ("blocks that would reach the sinks late are skipped (liveavatargen's skip-late, on by "
                       "default: the video shows the last frame for them), so the video keeps its time but shows "
                       "fewer of the audio's blocks; make it cheaper: %s",
                       cheaper));
}

void BlockLatency::restart() {
  blocks_ = 0;
  last_ = 0;
  worst_ = 0;
  slow_in_a_row_ = 0;
  warned_ = false;
}

bool BlockLatency::fell_behind(bool skipping) {
  if (warned_ || (slow_in_a_row_ < 3 && !(skipping && rtf_.load() > 1.0))) return false;
  warned_ = true;
  return true;
}

void BlockLatency::answer(GstQuery* query) {
  gboolean live = FALSE;
  GstClockTime min = 0;
  gst_query_parse_latency(query, &live, &min, nullptr);
  live_ = live;
  upstream_ = GST_CLOCK_TIME_IS_VALID(min) ? min : 0;
  add_latency(query, latency());
}

}  // namespace la::gst

// The progress report of long-running elements (DESIGN §5): one bus element
// message per block, structure "liveavatar-progress" (docs/elements.md):
//   blocks (guint64)        blocks done since the stream started
//   frames (guint64)        video frames out since the stream started
//   block-pts (GstClockTime) PTS of the block just done
//   block-seconds (gdouble) wall time spent on it
//   fps (gdouble)           its frames / block-seconds
//   rss-bytes (guint64)     process resident set
//   device-bytes (guint64)  CUDA caching allocator, allocated now (0 on the CPU)
//   skipped-blocks (guint64) blocks skipped as late since the stream started
//                           (liveavatargen's skip-late; lavaedecode: blocks it
//                           filled with its last frame)
#pragma once

#include <gst/gst.h>
#include <cstdint>

namespace la::gst {

inline constexpr const char* kProgressMessageName = "liveavatar-progress";

struct Progress {
  uint64_t blocks = 0, frames = 0;
  GstClockTime block_pts = GST_CLOCK_TIME_NONE;
  double block_seconds = 0, fps = 0;
  uint64_t rss_bytes = 0, device_bytes = 0;
  uint64_t skipped_blocks = 0;
};

// Posts the message on `element`'s bus and logs the same at INFO level in
// `category` (the element's own).
void post_progress(GstElement* element, GstDebugCategory* category, const Progress& p);

}  // namespace la::gst

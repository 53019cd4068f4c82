#include "gst/progress.h"

namespace la::gst {

void post_progress(GstElement* element, GstDebugCategory* category, const Progress& p) {
  GST_CAT_INFO_OBJECT(category, element, "block %" G_GUINT64_FORMAT " (pts %" GST_TIME_FORMAT "): %.1f ms, %.1f fps, %" G_GUINT64_FORMAT
                  " frames, RSS %.1f MiB, device %.1f MiB, %" G_GUINT64_FORMAT " skipped",
                  p.blocks, GST_TIME_ARGS(p.block_pts), p.block_seconds * 1e3, p.fps, p.frames,
                  static_cast<double>(p.rss_bytes) / (1 << 20), static_cast<double>(p.device_bytes) / (1 << 20), p.skipped_blocks);
  GstStructure* s = gst_structure_new(kProgressMessageName, "blocks", G_TYPE_UINT64, p.blocks, "frames", G_TYPE_UINT64,
                                      p.frames, "block-pts", G_TYPE_UINT64, p.block_pts, "block-seconds", G_TYPE_DOUBLE,
                                      p.block_seconds, "fps", G_TYPE_DOUBLE, p.fps, "rss-bytes", G_TYPE_UINT64,
                                      p.rss_bytes, "device-bytes", G_TYPE_UINT64, p.device_bytes, "skipped-blocks",
                                      G_TYPE_UINT64, p.skipped_blocks, nullptr);
  gst_element_post_message(element, gst_message_new_element(GST_OBJECT(element), s));
}

}  // namespace la::gst

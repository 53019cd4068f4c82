// Shared pieces of the element tests: GStreamer initialised once, the tiny
// checkpoint written once per test process, a bus that collects what an
// element posts, and harnesses around our elements.
#pragma once

#include <gtest/gtest.h>

#include <gst/app/gstappsink.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/common/expect_error.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tiny_checkpoint.h"

namespace la::test {

// Every sample the appsink `sink_name` of `pipeline` still holds (after EOS), as bytes.
inline std::vector<std::vector<uint8_t>> appsink_bytes(GstElement* pipeline, const char* sink_name) {
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), sink_name);
  std::vector<std::vector<uint8_t>> out;
  while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 0)) {
    GstBuffer* b = gst_sample_get_buffer(s);
    out.emplace_back(gst_buffer_get_size(b));
    gst_buffer_extract(b, 0, out.back().data(), out.back().size());
    gst_sample_unref(s);
  }
  gst_object_unref(sink);
  return out;
}

inline void ensure_gst() {
  static const bool done = [] {
    gst_init(nullptr, nullptr);
    return true;
  }();
  (void)done;
}

// DIR/Wan2.2-S2V-14B of a tiny checkpoint written by la-mkcheckpoint; the
// test fails (not skips) when the tool is missing: the build always makes it.
inline const std::filesystem::path& tiny_checkpoint_dir() {
  static TempDir* dir = new TempDir;  // removed by the OS's tmp cleaning, not at exit: elements may still hold files
  static const std::filesystem::path ckpt = [] {
    const int rc = make_tiny_checkpoint(dir->path());
    if (rc != 0) ADD_FAILURE() << "la-mkcheckpoint failed (" << rc << "); is LA_MKCHECKPOINT set?";
    return dir->path() / "Wan2.2-S2V-14B";
  }();
  return ckpt;
}
inline std::string tiny_wav2vec2_dir() { return (tiny_checkpoint_dir() / "wav2vec2-large-xlsr-53-english").string(); }
inline std::string tiny_vae_file() { return (tiny_checkpoint_dir() / "Wan2.1_VAE.pth").string(); }

// "text | debug" of an ERROR or WARNING message (the text alone stays empty for other types).
inline std::string message_text(GstMessage* m) {
  GError* err = nullptr;
  gchar* debug = nullptr;
  if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) gst_message_parse_error(m, &err, &debug);
  else if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_WARNING) gst_message_parse_warning(m, &err, &debug);
  std::string text = std::string(err ? err->message : "") + " | " + (debug ? debug : "");
  g_clear_error(&err);
  g_free(debug);
  return text;
}

// While it lives, calls `on_message` (from whichever thread logs) with the text of every message
// of the debug category `category` at INFO or more: the order of an element's own steps, for
// tests. The category's threshold is set to INFO and restored after.
class CategoryLog {
 public:
  CategoryLog(std::string category, std::function<void(const std::string&)> on_message)
      : category_(std::move(category)), on_message_(std::move(on_message)), level_(gst_debug_get_default_threshold()) {
    gst_debug_add_log_function(&CategoryLog::log, this, nullptr);
    gst_debug_set_threshold_for_name(category_.c_str(), GST_LEVEL_INFO);
  }
  ~CategoryLog() {
    gst_debug_remove_log_function_by_data(this);
    gst_debug_set_threshold_for_name(category_.c_str(), level_);
  }
  CategoryLog(const CategoryLog&) = delete;
  CategoryLog& operator=(const CategoryLog&) = delete;

 private:
  static void log(GstDebugCategory* cat, GstDebugLevel level, const gchar*, const gchar*, gint, GObject*,
                  GstDebugMessage* message, gpointer data) {
    auto* self = static_cast<CategoryLog*>(data);
    if (level <= GST_LEVEL_INFO && gst_debug_category_get_name(cat) == self->category_)
      self->on_message_(gst_debug_message_get(message));
  }
  const std::string category_;
  const std::function<void(const std::string&)> on_message_;
  const GstDebugLevel level_;
};

// A private bus set on an element (harnessed elements have none), so the
// test can read the errors, warnings and element messages it posts. Each take
// consumes the messages of its kind only: the others stay for a later take, in
// order (gst_bus_pop_filtered alone would drop them).
class BusCollector {
 public:
  explicit BusCollector(GstElement* element) : bus_(gst_bus_new()) { gst_element_set_bus(element, bus_); }
  ~BusCollector() {
    for (GstMessage* m : kept_) gst_message_unref(m);
    gst_object_unref(bus_);
  }
  BusCollector(const BusCollector&) = delete;
  BusCollector& operator=(const BusCollector&) = delete;

  // "text | debug" of every ERROR (or WARNING) message posted so far, consumed.
  std::vector<std::string> take(GstMessageType type = GST_MESSAGE_ERROR) {
    std::vector<std::string> out;
    for (GstMessage* m : take_messages(type)) {
      out.push_back(message_text(m));
      gst_message_unref(m);
    }
    return out;
  }
  // How many messages of `type` were posted so far, consumed.
  size_t count(GstMessageType type) {
    const auto taken = take_messages(type);
    for (GstMessage* m : taken) gst_message_unref(m);
    return taken.size();
  }
  // Element messages with this structure name, consumed (copies); other element messages stay.
  std::vector<GstStructure*> take_element_messages(const char* name) {
    std::vector<GstStructure*> out;
    collect();
    for (auto it = kept_.begin(); it != kept_.end();) {
      const GstStructure* s = GST_MESSAGE_TYPE(*it) == GST_MESSAGE_ELEMENT ? gst_message_get_structure(*it) : nullptr;
      if (s && gst_structure_has_name(s, name)) {
        out.push_back(gst_structure_copy(s));
        gst_message_unref(*it);
        it = kept_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

 private:
  // Everything posted so far, moved from the bus to kept_.
  void collect() {
    while (GstMessage* m = gst_bus_pop(bus_)) kept_.push_back(m);
  }
  std::vector<GstMessage*> take_messages(GstMessageType type) {
    collect();
    std::vector<GstMessage*> out;
    for (auto it = kept_.begin(); it != kept_.end();) {
      if (GST_MESSAGE_TYPE(*it) & type) {
        out.push_back(*it);
        it = kept_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  GstBus* bus_;
  std::deque<GstMessage*> kept_;
};

// One of our elements in a harness, with a bus. `setup` sets properties before
// the harness starts it (it goes to PLAYING at once).
struct Harnessed {
  GstHarness* h = nullptr;
  std::unique_ptr<BusCollector> bus;

  Harnessed(const char* factory, const std::function<void(GstElement*)>& setup) {
    ensure_gst();
    GstElement* element = gst_element_factory_make(factory, nullptr);
    if (!element) {
      const char* path = std::getenv("GST_PLUGIN_PATH");
      ADD_FAILURE() << "no element " << factory << " (GST_PLUGIN_PATH=" << (path ? path : "") << ")";
      return;
    }
    setup(element);
    bus = std::make_unique<BusCollector>(element);
    h = gst_harness_new_with_element(element, "sink", "src");
    gst_object_unref(element);
  }
  ~Harnessed() {
    if (h) gst_harness_teardown(h);
  }
  Harnessed(const Harnessed&) = delete;
  Harnessed& operator=(const Harnessed&) = delete;

  GstElement* element() const { return h->element; }
  // Every buffer waiting in the harness (the elements work in the pushing thread).
  std::vector<GstBuffer*> pull_all() {
    std::vector<GstBuffer*> out;
    while (GstBuffer* b = gst_harness_try_pull(h)) out.push_back(b);
    return out;
  }
  // Sends a flush and a fresh TIME segment starting at `start`.
  void flush(GstClockTime start = 0) {
    gst_harness_push_event(h, gst_event_new_flush_start());
    gst_harness_push_event(h, gst_event_new_flush_stop(TRUE));
    push_segment(start);
  }
  bool push_segment(GstClockTime start) {
    GstSegment segment;
    gst_segment_init(&segment, GST_FORMAT_TIME);
    segment.start = segment.time = start;
    return gst_harness_push_event(h, gst_event_new_segment(&segment));
  }
  // The current caps downstream of the element, as a string.
  std::string src_caps() const {
    GstCaps* caps = gst_pad_get_current_caps(h->sinkpad);
    if (!caps) return "(none)";
    gchar* s = gst_caps_to_string(caps);
    std::string out = s;
    g_free(s);
    gst_caps_unref(caps);
    return out;
  }
};

inline void unref_all(std::vector<GstBuffer*>& buffers) {
  for (GstBuffer* b : buffers) gst_buffer_unref(b);
  buffers.clear();
}

// The minimum latency the element reports with `upstream_min` upstream
// (live); false when the query fails.
inline bool query_latency(GstHarness* h, GstClockTime upstream_min, GstClockTime* min) {
  gst_harness_set_upstream_latency(h, upstream_min);
  GstQuery* q = gst_query_new_latency();
  const gboolean ok = gst_pad_peer_query(h->sinkpad, q);
  if (ok) gst_query_parse_latency(q, nullptr, min, nullptr);
  gst_query_unref(q);
  return ok;
}

// gst_parse_launch with a test failure (naming the line) instead of a crash
// on a line that does not parse.
inline GstElement* parse(const std::string& line) {
  ensure_gst();
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(line.c_str(), &err);
  EXPECT_TRUE(p && !err) << line << ": " << (err ? err->message : "");
  g_clear_error(&err);
  return p;
}

// Takes `p` to PLAYING and waits for EOS or an error, and leaves it there (appsinks keep their
// samples; the caller sets it to NULL): "" on EOS, "timeout" (no message for `timeout`), or the
// error's "message | debug". `on_element`, if given, sees every element message on the way.
inline std::string run_to_eos(GstElement* p, GstClockTime timeout,
                              const std::function<void(GstMessage*)>& on_element = {}) {
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  std::string error;
  for (;;) {
    GstMessage* m = gst_bus_timed_pop_filtered(
        bus, timeout, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR | GST_MESSAGE_ELEMENT));
    if (!m) {
      error = "timeout";
      break;
    }
    const auto type = GST_MESSAGE_TYPE(m);
    if (type == GST_MESSAGE_ELEMENT && on_element) on_element(m);
    if (type == GST_MESSAGE_ERROR) error = message_text(m);
    gst_message_unref(m);
    if (type != GST_MESSAGE_ELEMENT) break;
  }
  gst_object_unref(bus);
  return error;
}

// Writes `path`: a WAV of `buffers` buffers of 1600 samples (0.1 s each) from audiotestsrc
// (`properties`, e.g. "wave=ticks"), 16 kHz mono. Returns "" or the pipeline's error.
inline std::string write_tone_wav(const std::string& path, int buffers, const std::string& properties = "") {
  GstElement* w = parse("audiotestsrc num-buffers=" + std::to_string(buffers) + " samplesperbuffer=1600 " + properties +
                        " ! audio/x-raw,rate=16000,channels=1 ! wavenc ! filesink location=" + path);
  if (!w) return "does not parse";
  const std::string error = run_to_eos(w, 30 * GST_SECOND);
  gst_element_set_state(w, GST_STATE_NULL);
  gst_object_unref(w);
  return error;
}

// A PNG test picture written by GStreamer itself (videotestsrc `pattern`); returns `path`.
inline std::string write_test_png(const std::string& path, int width, int height, const char* pattern) {
  ensure_gst();
  const std::string line = "videotestsrc num-buffers=1 pattern=" + std::string(pattern) + " ! video/x-raw,width=" +
                           std::to_string(width) + ",height=" + std::to_string(height) +
                           " ! pngenc ! filesink location=" + path;
  GstElement* p = gst_parse_launch(line.c_str(), nullptr);
  EXPECT_NE(p, nullptr);
  if (!p) return path;
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(p);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, 10 * GST_SECOND,
                                             static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  EXPECT_TRUE(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS);
  if (m) gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  return path;
}

// The first error of taking a `factory` element, set up by `props`, to
// PAUSED; "(started)" when it starts.
inline std::string error_going_to_paused(const char* factory, const std::function<void(GstElement*)>& props) {
  ensure_gst();
  GstElement* e = gst_element_factory_make(factory, nullptr);
  gst_object_ref_sink(e);
  props(e);
  BusCollector bus(e);
  const GstStateChangeReturn ret = gst_element_set_state(e, GST_STATE_PAUSED);
  auto errors = bus.take();
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
  if (ret != GST_STATE_CHANGE_FAILURE) return "(started)";
  return errors.empty() ? "(failed without an error message)" : errors[0];
}

}  // namespace la::test

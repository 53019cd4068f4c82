// NULL -> PLAYING -> NULL, many times, with data flowing to EOS each time:
// no GStreamer object or buffer may be left behind (the leaks tracer counts
// them; meson runs this test with GST_TRACERS=leaks) and the resident set
// must not grow from cycle to cycle.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>

#include <ATen/ATen.h>

#include "gst/tensor_memory.h"
#include "tests/common/figure.h"
#include "tests/gst/gst_test_util.h"

namespace {

// Resident set after returning freed heap pages to the OS (malloc_trim), so
// what is left is what is still allocated.
long rss_kib() {
  malloc_trim(0);
  long pages_total = 0, pages_resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
  }
  return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// Bytes malloc has handed out and not had back (every arena, mmapped chunks
// included): what a leak grows, without the free memory an arena keeps
// (RSS grows by that when another test runs beside this one).
// Under LeakSanitizer (gst-state-changes-lsan preloads it) malloc is the
// sanitizer's, which mallinfo2 does not see: ask the sanitizer then.
extern "C" size_t __sanitizer_get_current_allocated_bytes() __attribute__((weak));
long heap_in_use_kib() {
  if (__sanitizer_get_current_allocated_bytes) return static_cast<long>(__sanitizer_get_current_allocated_bytes() / 1024);
  const struct mallinfo2 m = mallinfo2();
  return static_cast<long>((m.uordblks + m.hblkhd) / 1024);
}

// Runs the pipeline to EOS (or error) and back to NULL; returns whether it reached EOS.
bool run_once(GstElement* pipeline) {
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) return false;
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m = gst_bus_timed_pop_filtered(bus, 60 * GST_SECOND,
                                             static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  const bool eos = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
  if (m) gst_message_unref(m);
  gst_bus_set_flushing(bus, TRUE);  // drop progress messages etc.
  gst_bus_set_flushing(bus, FALSE);
  gst_object_unref(bus);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  return eos;
}

// Live GstObjects and GstMiniObjects according to the leaks tracer (-1 when
// it is not active), counted from the "object-alive" records its
// "log-live-objects" action writes to the GST_TRACER debug category.
// ("get-live-objects" is no use here: in GStreamer 1.22 it drops a reference
// of every object it reports without having taken one.)
struct AliveLog {
  std::mutex lock;
  long count = 0;
  std::string text;
};
void collect_alive(GstDebugCategory* category, GstDebugLevel, const gchar*, const gchar*, gint, GObject*,
                   GstDebugMessage* message, gpointer data) {
  const gchar* text = gst_debug_message_get(message);
  if (g_strcmp0(gst_debug_category_get_name(category), "GST_TRACER") != 0 || !text ||
      !g_str_has_prefix(text, "object-alive"))
    return;
  auto* log = static_cast<AliveLog*>(data);
  std::lock_guard<std::mutex> g(log->lock);
  ++log->count;
  log->text += std::string(text) + "\n";
}

AliveLog& alive_log() {
  static AliveLog* log = [] {
    auto* l = new AliveLog;
    gst_debug_set_threshold_for_name("GST_TRACER", GST_LEVEL_TRACE);
    // Only our collector sees the log: the records are not test output.
    gst_debug_remove_log_function(gst_debug_log_default);
    gst_debug_add_log_function(collect_alive, l, nullptr);
    return l;
  }();
  return *log;
}

long count_live_objects(std::string* list) {
  AliveLog& log = alive_log();
  GList* tracers = gst_tracing_get_active_tracers();
  long n = -1;
  for (GList* l = tracers; l; l = l->next) {
    if (g_strcmp0(G_OBJECT_TYPE_NAME(l->data), "GstLeaksTracer") != 0) continue;
    {
      std::lock_guard<std::mutex> g(log.lock);
      log.count = 0;
      log.text.clear();
    }
    g_signal_emit_by_name(l->data, "log-live-objects");
    std::lock_guard<std::mutex> g(log.lock);
    n = log.count;
    if (list) *list = log.text;
  }
  g_list_free_full(tracers, gst_object_unref);
  return n;
}

// The count once it is steady: a finished pipeline's source task is released
// by its pool thread a moment after the state change returns.
long live_objects(std::string* list = nullptr) {
  long n = count_live_objects(list);
  for (int i = 0; i < 40; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    const long again = count_live_objects(list);
    if (again == n) break;
    n = again;
  }
  return n;
}

void cycle_without_leaks(const std::string& description, int cycles = 20, long heap_limit_kib = 8 * 1024) {
  la::test::ensure_gst();
  auto make = [&] {
    GError* error = nullptr;
    GstElement* p = gst_parse_launch(description.c_str(), &error);
    EXPECT_EQ(error, nullptr) << (error ? error->message : "");
    g_clear_error(&error);
    return p;
  };
  // Warm-up: first loads, lazily created types, caps and allocator.
  for (int i = 0; i < 3; ++i) {
    GstElement* p = make();
    ASSERT_TRUE(p);
    ASSERT_TRUE(run_once(p)) << "warm-up cycle " << i;
    gst_object_unref(p);
  }
  std::string alive_before;
  const long objects_before = live_objects(&alive_before);
  const int64_t memories_before = la::gst::live_tensor_memories();
  const long rss_before = rss_kib(), heap_before = heap_in_use_kib();
  // One pipeline cycled `cycles` times, then 5 pipelines made and destroyed.
  // The check is on the heap in use, from cycle 25 on in long runs (caches
  // settle in the first cycles). RSS is printed but not checked: with another
  // test beside this one the arenas keep freed memory (a CI run saw RSS +16.5
  // MiB over cycles 25-100 with the heap flat). Heap leaks of any size are
  // gst-state-changes-lsan's to find; this catches the big ones.
  long heap_base = heap_before;
  GstElement* p = make();
  for (int i = 0; i < cycles; ++i) {
    ASSERT_TRUE(run_once(p)) << "cycle " << i;
    if ((i + 1) % 25 == 0) {
      const long now = heap_in_use_kib();
      std::printf("  after %d cycles: heap in use %ld KiB, RSS %ld KiB\n", i + 1, now, rss_kib());
      if (i + 1 == 25 && cycles >= 50) heap_base = now;
    }
  }
  gst_object_unref(p);
  for (int i = 0; i < 5; ++i) {
    GstElement* q = make();
    ASSERT_TRUE(run_once(q));
    gst_object_unref(q);
  }
  std::string left;
  const long objects_after = live_objects(&left);
  const long rss_after = rss_kib(), heap_after = heap_in_use_kib();
  ASSERT_GE(objects_before, 0) << "the leaks tracer is not active (GST_TRACERS=leaks)";
  // The count sees a live object (so the check below can fail).
  GstBuffer* alive = gst_buffer_new();
  EXPECT_EQ(live_objects(), objects_after + 1);
  gst_buffer_unref(alive);
  const int64_t memories_after = la::gst::live_tensor_memories();
  // The tensor-memory count sees a live one (so the check below can fail).
  GstMemory* probe = la::gst::tensor_memory_new(at::zeros({4}));
  EXPECT_EQ(la::gst::live_tensor_memories(), memories_after + 1);
  gst_memory_unref(probe);
  EXPECT_EQ(memories_after, memories_before) << "tensor memories (blocks, frames) left behind";
  EXPECT_EQ(objects_after, objects_before) << "GStreamer objects left behind after " << cycles + 5 << " cycles: " << left
                                         << " (before: " << alive_before << ")";
  // A leaked model, decoder cache or block per cycle would show here; the
  // allocator's own noise stays far below.
  // The heap count sees a held allocation (so the check below can fail). 8 MiB
  // held, at least 4 MiB seen: other threads may free a little meanwhile (a CI
  // run saw a 4 MiB probe counted as 4095 KiB).
  void* held = std::malloc(8 << 20);
  std::memset(held, 1, 8 << 20);
  EXPECT_GE(heap_in_use_kib() - heap_after, 4 * 1024);
  std::free(held);
  EXPECT_LT(heap_after - heap_base, heap_limit_kib)
      << "heap in use grew from " << heap_base << " to " << heap_after << " KiB";
  std::printf("%s: heap in use %ld -> %ld KiB (checked from %ld), RSS %ld -> %ld KiB, live objects %ld -> %ld\n",
              description.substr(0, 40).c_str(), heap_before, heap_after, heap_base, rss_before, rss_after,
              objects_before, objects_after);
  // The cycles checked (after the 3 warm-up ones), quoted in docs/elements.md and docs/testing.md.
  la::test::record_doc_figure(
      std::string("gst.state_cycles.") + ::testing::UnitTest::GetInstance()->current_test_info()->name(), cycles + 5);
}

}  // namespace

TEST(GstStateChanges, AudioFeatCyclesWithoutLeaks) {
  cycle_without_leaks("audiotestsrc num-buffers=12 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 ! "
                      "laaudiofeat model-dir=" + la::test::tiny_wav2vec2_dir() + " ! fakesink sync=false");
}

TEST(GstStateChanges, AudioFeatOfflineCyclesWithoutLeaks) {
  cycle_without_leaks("audiotestsrc num-buffers=12 samplesperbuffer=1600 ! audio/x-raw,rate=16000,channels=1 ! "
                      "laaudiofeat mode=offline model-dir=" + la::test::tiny_wav2vec2_dir() + " ! fakesink sync=false");
}

TEST(GstStateChanges, VaeDecodeCyclesWithoutLeaks) {
  // Two blocks of zero latents [16,3,4,6] float32 from /dev/zero.
  cycle_without_leaks("filesrc location=/dev/zero blocksize=4608 num-buffers=2 ! "
                      "application/x-liveavatar-latent,channels=16,frames=3,latent-height=4,latent-width=6,"
                      "dtype=float32 ! lavaedecode checkpoint-dir=" + la::test::tiny_checkpoint_dir().string() +
                      " ! videoconvert ! fakesink sync=false");
}

TEST(GstStateChanges, WholeBinCycles100TimesWithoutLeaks) {
  // Models are loaded at NULL->READY and freed at READY->NULL (the cache keeps
  // weak references), prompt and image encoded, sink prefilled, one block
  // generated and decoded, every cycle.
  la::test::ensure_gst();
  const auto dir = la::test::tiny_checkpoint_dir();
  const std::string image = (dir.parent_path() / "face.png").string();
  GstElement* png = gst_parse_launch(("videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! pngenc ! "
                                      "filesink location=" + image).c_str(), nullptr);
  ASSERT_TRUE(run_once(png));
  gst_object_unref(png);
  cycle_without_leaks("audiotestsrc num-buffers=5 samplesperbuffer=1600 ! liveavatarbin checkpoint-dir=" +
                          dir.string() + " lora=" +
                          (dir.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string() +
                          " image=" + image + " size=64*64 prompt=hello ! fakesink sync=false",
                      // LA_STATE_CYCLES runs longer to look for a trend. The whole bin's RSS
                      // wanders by +-7 MiB from cycle to cycle (threads' malloc arenas, mapped
                      // checkpoint pages) with no trend over 200 cycles (409-422 MiB measured),
                      // hence 16 MiB here; the live-object count is the exact check.
                      std::getenv("LA_STATE_CYCLES") ? std::atoi(std::getenv("LA_STATE_CYCLES")) : 100, 16 * 1024);
}

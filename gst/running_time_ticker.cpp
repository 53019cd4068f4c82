#include "gst/running_time_ticker.h"

namespace la::gst {

RunningTimeTicker::RunningTimeTicker(GstElement* element, std::chrono::milliseconds period,
                                     std::function<void(GstClockTime)> on_tick)
    : element_(element), period_(period), on_tick_(std::move(on_tick)), thread_([this] { run(); }) {}

RunningTimeTicker::~RunningTimeTicker() {
  {
    std::lock_guard<std::mutex> g(lock_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RunningTimeTicker::run() {
  std::unique_lock<std::mutex> g(lock_);
  while (!wake_.wait_for(g, period_, [this] { return stop_; })) {
    g.unlock();
    // The running time by the pipeline's clock: clock time - base time, only
    // while PLAYING (a paused pipeline's running time stands still).
    GstClockTime running = GST_CLOCK_TIME_NONE;
    GST_OBJECT_LOCK(element_);
    const bool playing = GST_STATE(element_) == GST_STATE_PLAYING && GST_STATE_PENDING(element_) == GST_STATE_VOID_PENDING;
    GstClock* clock = playing && GST_ELEMENT_CLOCK(element_) ? GST_CLOCK(gst_object_ref(GST_ELEMENT_CLOCK(element_)))
                                                             : nullptr;
    const GstClockTime base = GST_ELEMENT_CAST(element_)->base_time;
    GST_OBJECT_UNLOCK(element_);
    if (clock) {
      const GstClockTime now = gst_clock_get_time(clock);
      gst_object_unref(clock);
      if (GST_CLOCK_TIME_IS_VALID(now) && now >= base) running = now - base;
    }
    if (GST_CLOCK_TIME_IS_VALID(running)) on_tick_(running);
    g.lock();
  }
}

}  // namespace la::gst

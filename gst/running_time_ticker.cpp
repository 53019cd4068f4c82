#include "gst/running_time_ticker.h"

namespace la::gst {

GstClockTime running_time_now(GstElement* element) {
  GST_OBJECT_LOCK(element);
  const bool playing = GST_STATE(element) == GST_STATE_PLAYING && GST_STATE_PENDING(element) == GST_STATE_VOID_PENDING;
  GstClock* clock =
      playing && GST_ELEMENT_CLOCK(element) ? GST_CLOCK(gst_object_ref(GST_ELEMENT_CLOCK(element))) : nullptr;
  const GstClockTime base = element->base_time;
  GST_OBJECT_UNLOCK(element);
  if (!clock) return GST_CLOCK_TIME_NONE;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  return GST_CLOCK_TIME_IS_VALID(now) && now >= base ? now - base : GST_CLOCK_TIME_NONE;
}

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
    const GstClockTime running = running_time_now(element_);
    if (GST_CLOCK_TIME_IS_VALID(running)) on_tick_(running);
    g.lock();
  }
}

}  // namespace la::gst

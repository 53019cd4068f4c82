// A thread that calls back with the pipeline's running time at a fixed
// period while an element is PLAYING: the clock-driven half of live
// operation (DESIGN §5). laaudiofeat uses it to add silence while a live
// source sends nothing, so the avatar keeps moving and the stream never stalls.
//
// The callback runs on the ticker's own thread; it must serialise itself with
// the element's streaming thread. Destruction stops and joins the thread (it
// waits for a callback in progress to return).
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace la::gst {

// The running time of `element`'s pipeline clock now (clock time - base
// time), or NONE unless it is PLAYING with a clock (a paused pipeline's
// running time stands still).
GstClockTime running_time_now(GstElement* element);

class RunningTimeTicker {
 public:
  RunningTimeTicker(GstElement* element, std::chrono::milliseconds period,
                    std::function<void(GstClockTime running_time)> on_tick);
  ~RunningTimeTicker();
  RunningTimeTicker(const RunningTimeTicker&) = delete;
  RunningTimeTicker& operator=(const RunningTimeTicker&) = delete;

 private:
  void run();

  GstElement* element_;  // not owned: the element owns the ticker
  std::chrono::milliseconds period_;
  std::function<void(GstClockTime)> on_tick_;
  std::mutex lock_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace la::gst

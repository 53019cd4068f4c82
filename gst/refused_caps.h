// One error per refused caps. GStreamer sends sticky events again before every buffer and
// serialized event that follows one a pad did not accept, so an element that refuses caps in
// its CAPS event would post the same negotiation error for each (six for one buffer and EOS in
// a launch line). The element posts it the first time and refuses silently after that, until
// other caps come or the stream stops.
#pragma once

#include <gst/gst.h>

#include <mutex>

namespace la::gst {

class RefusedCaps {
 public:
  RefusedCaps() = default;
  ~RefusedCaps() { reset(); }
  RefusedCaps(const RefusedCaps&) = delete;
  RefusedCaps& operator=(const RefusedCaps&) = delete;

  // True when `caps` are not the ones refused last: post the error now.
  bool first_refusal(GstCaps* caps);
  // Forgets them (caps that fit came, or READY): the next refusal is posted.
  void reset();

 private:
  std::mutex lock_;
  GstCaps* last_ = nullptr;
};

}  // namespace la::gst

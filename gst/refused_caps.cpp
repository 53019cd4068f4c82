#include "gst/refused_caps.h"

namespace la::gst {

bool RefusedCaps::first_refusal(GstCaps* caps) {
  std::lock_guard<std::mutex> g(lock_);
  if (last_ && gst_caps_is_equal(last_, caps)) return false;
  gst_caps_replace(&last_, caps);
  return true;
}

void RefusedCaps::reset() {
  std::lock_guard<std::mutex> g(lock_);
  gst_caps_replace(&last_, nullptr);
}

}  // namespace la::gst

// When a property change takes effect. Our elements read every property that
// is not marked GST_PARAM_MUTABLE_PLAYING when they start (files, devices and
// the size at NULL->READY, the stream's settings at READY->PAUSED): a change
// while PAUSED or PLAYING would do nothing until the next start, silently.
#pragma once

#include <gst/gst.h>

namespace la::gst {

// Call at the top of set_property, before taking the element's own lock (it
// reads the current value through get_property). When `element` is PAUSED or
// PLAYING, the property is not GST_PARAM_MUTABLE_PLAYING and `value` differs
// from the current one, an element warning naming the property is posted
// shortly after, from another thread (gst_element_call_async: the caller may
// hold locks its sync bus handler takes). Returns whether it will warn.
bool warn_if_set_while_running(GstElement* element, GParamSpec* pspec, const GValue* value);

// While one lives, warn_if_set_while_running() posts nothing on this thread: liveavatarbin warns
// once for its own property and then sets its children's quietly (checkpoint-dir alone would
// otherwise give three warnings, from two children and a third property derived from it).
class QuietPropertyWarnings {
 public:
  QuietPropertyWarnings();
  ~QuietPropertyWarnings();
  QuietPropertyWarnings(const QuietPropertyWarnings&) = delete;
  QuietPropertyWarnings& operator=(const QuietPropertyWarnings&) = delete;
};

}  // namespace la::gst

// When a property change takes effect. Our elements read every property that
// is not marked GST_PARAM_MUTABLE_PLAYING when they start (files, devices and
// the size at NULL->READY, the stream's settings at READY->PAUSED): a change
// while PAUSED or PLAYING would do nothing until the next start, silently.
#pragma once

#include <gst/gst.h>

namespace la::gst {

// Call at the top of set_property, before taking the element's own lock (the
// warning is posted on the bus, whose sync handlers may read properties).
// Posts an element warning naming the property when `element` is PAUSED or
// PLAYING, the property is not GST_PARAM_MUTABLE_PLAYING and `value` differs
// from the current one. Returns whether it warned.
bool warn_if_set_while_running(GstElement* element, GParamSpec* pspec, const GValue* value);

}  // namespace la::gst

// Query answers every element of the plugin gives the same way.
#pragma once

#include <gst/gst.h>

namespace la::gst {

// Answers a CAPS query with `caps` (ownership taken), narrowed by the query's filter.
gboolean answer_caps_query(GstQuery* query, GstCaps* caps);

// ACCEPT_CAPS: accepts any fixed caps of `media_type`, so that the CAPS event
// reaches the element, whose check names the field that does not fit (the
// default check would refuse them with a bare not-negotiated).
gboolean accept_fixed_caps_of(GstQuery* query, const char* media_type);

// Adds `ours` to an answered LATENCY query's minimum and (when bounded) maximum.
void add_latency(GstQuery* query, GstClockTime ours);

}  // namespace la::gst

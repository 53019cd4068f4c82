// Query and event answers every element of the plugin gives the same way.
#pragma once

#include <gst/gst.h>

namespace la::gst {

// Answers a CAPS query with `caps` (ownership taken), narrowed by the query's filter.
gboolean answer_caps_query(GstQuery* query, GstCaps* caps);

// ACCEPT_CAPS: accepts any fixed caps of `media_type`, so that the CAPS event
// reaches the element, whose check names the field that does not fit (the
// default check would refuse them with a bare not-negotiated).
gboolean accept_fixed_caps_of(GstQuery* query, const char* media_type);

// CAPS on a sink pad whose element checks the fields itself (with accept_fixed_caps_of):
// `media_type` with any fields, in system memory and memory:LiveAvatarTensor, narrowed by
// the filter. The pad template lists the fields the element takes; answering with it, a link
// to anything else would fail in gst-launch-1.0 with GStreamer's bare "can't handle caps"
// before the element could say which field is wrong.
gboolean answer_caps_query_any_fields(GstQuery* query, const char* media_type);

// Caps for a producer to push on `srcpad`: the first of `offer` (taken, in
// our order of preference) that the peer takes, fixated; nullptr when the
// peer takes none of them. An unlinked pad takes the first.
GstCaps* pick_caps_with_peer(GstPad* srcpad, GstCaps* offer);

// A SEGMENT event from upstream (taken) -> the event to push downstream, with
// the segment kept in `segment`: a TIME segment as it is; any other format is
// replaced by a TIME segment from 0 (our blocks are timed by counting, so
// without time upstream the stream starts at 0).
GstEvent* time_segment_event(GstObject* element, GstEvent* event, GstSegment* segment);

// Whether upstream of `sinkpad` is live: a LATENCY query to its peer (false when unanswered).
// Our elements that emit nothing until the end of a stream ask it at their first buffer, to
// say at once that they cannot run live (a live pipeline would wait for them, silently, until EOS).
bool upstream_is_live(GstPad* sinkpad);

// Adds `ours` to an answered LATENCY query's minimum and (when bounded) maximum.
void add_latency(GstQuery* query, GstClockTime ours);

}  // namespace la::gst

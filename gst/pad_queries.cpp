#include "gst/pad_queries.h"

#include "gst/media_types.h"

namespace la::gst {

gboolean answer_caps_query(GstQuery* query, GstCaps* caps) {
  GstCaps* filter;
  gst_query_parse_caps(query, &filter);
  if (filter) {
    GstCaps* both = gst_caps_intersect_full(filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref(caps);
    caps = both;
  }
  gst_query_set_caps_result(query, caps);
  gst_caps_unref(caps);
  return TRUE;
}

gboolean accept_fixed_caps_of(GstQuery* query, const char* media_type) {
  GstCaps* caps;
  gst_query_parse_accept_caps(query, &caps);
  const gboolean ok = gst_caps_is_fixed(caps) && gst_structure_has_name(gst_caps_get_structure(caps, 0), media_type);
  gst_query_set_accept_caps_result(query, ok);
  return TRUE;
}

gboolean answer_caps_query_any_fields(GstQuery* query, const char* media_type) {
  GstCaps* caps = gst_caps_new_empty_simple(media_type);
  GstCaps* in_tensor_memory = gst_caps_new_empty_simple(media_type);
  gst_caps_set_features(in_tensor_memory, 0, gst_caps_features_new(kTensorMemoryFeature, nullptr));
  gst_caps_append(caps, in_tensor_memory);
  return answer_caps_query(query, caps);
}

GstCaps* pick_caps_with_peer(GstPad* srcpad, GstCaps* offer) {
  GstCaps* theirs = gst_pad_peer_query_caps(srcpad, offer);
  GstCaps* common = gst_caps_intersect_full(offer, theirs, GST_CAPS_INTERSECT_FIRST);
  gst_caps_unref(theirs);
  gst_caps_unref(offer);
  if (gst_caps_is_empty(common)) {
    gst_caps_unref(common);
    return nullptr;
  }
  return gst_caps_fixate(common);
}

GstEvent* time_segment_event(GstObject* element, GstEvent* event, GstSegment* segment) {
  const GstSegment* upstream;
  gst_event_parse_segment(event, &upstream);
  if (upstream->format == GST_FORMAT_TIME) {
    gst_segment_copy_into(upstream, segment);
    return event;
  }
  GST_INFO_OBJECT(element, "%s segment upstream: timestamps start at 0", gst_format_get_name(upstream->format));
  gst_segment_init(segment, GST_FORMAT_TIME);
  gst_event_unref(event);
  return gst_event_new_segment(segment);
}

bool upstream_is_live(GstPad* sinkpad) {
  GstQuery* query = gst_query_new_latency();
  gboolean live = FALSE;
  if (gst_pad_peer_query(sinkpad, query)) gst_query_parse_latency(query, &live, nullptr, nullptr);
  gst_query_unref(query);
  return live;
}

void add_latency(GstQuery* query, GstClockTime ours) {
  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency(query, &live, &min, &max);
  min += ours;
  if (GST_CLOCK_TIME_IS_VALID(max)) max += ours;
  gst_query_set_latency(query, live, min, max);
}

}  // namespace la::gst

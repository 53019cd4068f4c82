#include "gst/property_state.h"

#include <string>

namespace la::gst {

namespace {
thread_local int quiet_scopes = 0;
}  // namespace

QuietPropertyWarnings::QuietPropertyWarnings() { ++quiet_scopes; }
QuietPropertyWarnings::~QuietPropertyWarnings() { --quiet_scopes; }

bool warn_if_set_while_running(GstElement* element, GParamSpec* pspec, const GValue* value) {
  if (quiet_scopes > 0 || (pspec->flags & GST_PARAM_MUTABLE_PLAYING)) return false;
  GST_OBJECT_LOCK(element);
  const GstState state = GST_STATE(element);
  GST_OBJECT_UNLOCK(element);
  if (state < GST_STATE_PAUSED) return false;
  GValue current = G_VALUE_INIT;
  g_value_init(&current, G_PARAM_SPEC_VALUE_TYPE(pspec));
  g_object_get_property(G_OBJECT(element), pspec->name, &current);
  const bool same = g_param_values_cmp(pspec, value, &current) == 0;
  g_value_unset(&current);
  if (same) return false;  // an application setting everything again changes nothing
  // Posted from GStreamer's thread pool, not from here: the application's thread may hold a lock
  // its own sync bus handler takes, or be inside that handler.
  struct Change {
    std::string property, state;
  };
  gst_element_call_async(
      element,
      [](GstElement* e, gpointer data) {
        const auto* c = static_cast<const Change*>(data);
        GST_ELEMENT_WARNING(e, CORE, STATE_CHANGE,
                            ("%s changed while %s: it is read when the element starts, so the new value takes "
                             "effect only after the element goes to READY (NULL for files, devices and the size) "
                             "and back",
                             c->property.c_str(), c->state.c_str()),
                            ("only properties marked changeable in PLAYING (gst-inspect-1.0) apply at once"));
      },
      new Change{pspec->name, gst_element_state_get_name(state)},
      [](gpointer data) { delete static_cast<Change*>(data); });
  return true;
}

}  // namespace la::gst

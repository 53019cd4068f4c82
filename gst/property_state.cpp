#include "gst/property_state.h"

namespace la::gst {

bool warn_if_set_while_running(GstElement* element, GParamSpec* pspec, const GValue* value) {
  if (pspec->flags & GST_PARAM_MUTABLE_PLAYING) return false;
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
  GST_ELEMENT_WARNING(element, CORE, STATE_CHANGE,
                      ("%s changed while %s: it is read when the element starts, so the new value takes effect "
                       "only after the element goes to READY (NULL for files, devices and the size) and back",
                       pspec->name, gst_element_state_get_name(state)),
                      ("only properties marked changeable in PLAYING (gst-inspect-1.0) apply at once"));
  return true;
}

}  // namespace la::gst

// The liveavatar plugin: libgstliveavatar.so.
#include <gst/gst.h>

// GST_PLUGIN_DEFINE names the source package through this macro.
#define PACKAGE "gst-liveavatar"

#include "gst/element_registration.h"

static gboolean plugin_init(GstPlugin* plugin) {
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(laaudiofeat, plugin);
  ok |= GST_ELEMENT_REGISTER(lavaedecode, plugin);
  ok |= GST_ELEMENT_REGISTER(liveavatargen, plugin);
  // After the three elements: the bin copies their property specs.
  ok |= GST_ELEMENT_REGISTER(liveavatarbin, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, liveavatar,
                  "LiveAvatar audio-driven talking-avatar video diffusion as live GStreamer elements", plugin_init,
                  LA_PLUGIN_VERSION, "Apache 2.0", "gst-liveavatar", "gst-liveavatar")

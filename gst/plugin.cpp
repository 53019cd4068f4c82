// The liveavatar plugin: libgstliveavatar.so.
#include <gst/gst.h>

#include <string>

// GST_PLUGIN_DEFINE names the source package through this macro.
#define PACKAGE "gst-liveavatar"

#include "gst/cxx_unwinder.h"
#include "gst/element_registration.h"

GST_DEBUG_CATEGORY_STATIC(la_plugin_debug);
#define GST_CAT_DEFAULT la_plugin_debug

static gboolean plugin_init(GstPlugin* plugin) {
  GST_DEBUG_CATEGORY_INIT(la_plugin_debug, "liveavatar", 0, "LiveAvatar plugin loading");
  // gst/cxx_unwinder.h: what a crash report needs first on the GPU path.
  const std::string unwinder = la::gst::cxx_unwinder_library();
  GST_INFO("C++ exceptions in this process are unwound by %s", unwinder.empty() ? "(none found)" : unwinder.c_str());
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

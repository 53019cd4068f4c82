#include "gst/stage_element.h"

namespace {

GstElementClass* parent_class = nullptr;

GstLaStageElementClass* stage_class(gpointer instance) {
  return GST_LA_STAGE_ELEMENT_CLASS(G_OBJECT_GET_CLASS(instance));
}

// What READY->NULL does, also after a NULL->READY that failed half-way: the subclass releases
// its models, then the stage goes back to the CPU.
void release(GstLaStageElement* self, GstLaStageElementClass* klass) {
  if (klass->close) klass->close(self);
  self->stage->close();
}

GstStateChangeReturn change_state(GstElement* element, GstStateChange transition) {
  auto* self = reinterpret_cast<GstLaStageElement*>(element);
  GstLaStageElementClass* klass = stage_class(element);
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (klass->open && !klass->open(self)) {
        release(self, klass);
        return GST_STATE_CHANGE_FAILURE;
      }
      self->stage->loaded();
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (klass->start && !klass->start(self)) return GST_STATE_CHANGE_FAILURE;
      break;
    default:
      break;
  }
  const GstStateChangeReturn ret = parent_class->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    // The pads did not activate (READY->PAUSED) or the like: undo what this change did above,
    // as the opposite change would.
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED && klass->stop) klass->stop(self);
    if (transition == GST_STATE_CHANGE_NULL_TO_READY) release(self, klass);
    return ret;
  }
  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      if (klass->stop) klass->stop(self);
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      release(self, klass);
      break;
    default:
      break;
  }
  return ret;
}

void finalize(GObject* object) {
  delete reinterpret_cast<GstLaStageElement*>(object)->stage;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

void class_init(gpointer g_class, gpointer) {
  parent_class = GST_ELEMENT_CLASS(g_type_class_peek_parent(g_class));
  G_OBJECT_CLASS(g_class)->finalize = finalize;
  GST_ELEMENT_CLASS(g_class)->change_state = change_state;
}

// `g_class` is the class of the instance being made (the subclass), whose pad
// templates this needs; G_OBJECT_GET_CLASS would still give this class here.
void instance_init(GTypeInstance* instance, gpointer g_class) {
  auto* self = reinterpret_cast<GstLaStageElement*>(instance);
  auto* element_class = GST_ELEMENT_CLASS(g_class);
  self->stage = new la::gst::StageDevice;
  for (const char* name : {"sink", "src"})
    if (!gst_element_class_get_pad_template(element_class, name))
      g_error("%s: a GstLaStageElement needs a \"%s\" pad template (gst_element_class_add_static_pad_template in "
              "its class_init)",
              G_OBJECT_CLASS_NAME(g_class), name);
  self->sinkpad = gst_pad_new_from_template(gst_element_class_get_pad_template(element_class, "sink"), "sink");
  self->srcpad = gst_pad_new_from_template(gst_element_class_get_pad_template(element_class, "src"), "src");
  gst_element_add_pad(GST_ELEMENT(self), self->sinkpad);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
}

}  // namespace

GType gst_la_stage_element_get_type() {
  static const GType type = [] {
    // Another copy of this code in the process (a test program linking the glue next to the
    // loaded plugin) may have registered it first: the same layout, shared.
    if (const GType registered = g_type_from_name("GstLaStageElement")) return registered;
    const GTypeInfo info = {sizeof(GstLaStageElementClass), nullptr, nullptr, class_init, nullptr, nullptr,
                            sizeof(GstLaStageElement),      0,       instance_init, nullptr};
    const GType registered = g_type_register_static(GST_TYPE_ELEMENT, "GstLaStageElement", &info, G_TYPE_FLAG_ABSTRACT);
    // Documented as the base class of the plugin's elements.
    gst_type_mark_as_plugin_api(registered, static_cast<GstPluginAPIFlags>(0));
    return registered;
  }();
  return type;
}

// The base class of laaudiofeat, liveavatargen and lavaedecode. Each is one
// stage of the avatar pipeline: an always "sink" pad, an always "src" pad, and
// models on one device. The chores that come with that are the same in all
// three and live here, as nvcodec's GstCudaBaseTransform keeps its elements'
// CUDA chores (DESIGN §8):
//  - the pads, made at instance init from the subclass's "sink" and "src" pad
//    templates (the subclass then sets their chain, event and query functions);
//  - the stage's device and CUDA stream (`stage`, gst/stage_device.h);
//  - the state changes, in this order, through four virtual methods:
//      NULL->READY    open()   load the models. The subclass opens `stage` on
//                              the device it resolves, then loads onto it.
//                              false (after a GST_ELEMENT_ERROR) fails the
//                              change, and the base then calls close() and
//                              closes the stage, so a half-done load is
//                              released. true: the base waits for the
//                              loading (StageDevice::loaded()).
//      READY->PAUSED  start()  the per-stream state, before the pads are
//                              activated; false fails the change.
//      PAUSED->READY  stop()   after the pads were deactivated: the streaming
//                              thread has stopped.
//      READY->NULL    close()  release the models; the base then closes the
//                              stage (back to the CPU, no stream).
//    Each method may be left NULL.
#pragma once

#include <gst/gst.h>

#include "gst/stage_device.h"

struct GstLaStageElement {
  GstElement parent;
  GstPad* sinkpad;
  GstPad* srcpad;
  // A C++ object in a GObject (which is not constructed): made at instance
  // init, deleted at finalize, so a subclass's C++ state may hold a reference.
  la::gst::StageDevice* stage;
};

struct GstLaStageElementClass {
  GstElementClass parent_class;
  bool (*open)(GstLaStageElement* element);
  bool (*start)(GstLaStageElement* element);
  void (*stop)(GstLaStageElement* element);
  void (*close)(GstLaStageElement* element);
};

GType gst_la_stage_element_get_type();
#define GST_TYPE_LA_STAGE_ELEMENT (gst_la_stage_element_get_type())
#define GST_LA_STAGE_ELEMENT_CLASS(klass) (reinterpret_cast<GstLaStageElementClass*>(klass))

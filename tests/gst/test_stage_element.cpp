// The base class of the three stage elements (gst/stage_element.h), through a
// small subclass of its own that records when its four methods are called:
// the order of the state-change chores, the pads it makes, and what it does
// after a failed open() or start().
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/runtime/cuda_runtime_info.h"
#include "gst/stage_element.h"
#include "tests/gst/gst_test_util.h"

namespace {

struct Recorder {
  std::vector<std::string> calls;  // "open", "start", ... with " (pads active)" when they were
  bool fail_open = false, fail_start = false;
  bool fail_activation = false;  // the sink pad refuses to activate (READY->PAUSED fails after start())
  int device_id = -1;  // what open() opens the stage on
};
Recorder recorder;

void record(GstLaStageElement* self, const char* what) {
  const bool active = gst_pad_is_active(self->sinkpad) || gst_pad_is_active(self->srcpad);
  recorder.calls.push_back(std::string(what) + (active ? " (pads active)" : ""));
}

struct RecordingStage {
  GstLaStageElement parent;
};
struct RecordingStageClass {
  GstLaStageElementClass parent_class;
};

}  // namespace

G_DEFINE_TYPE(RecordingStage, recording_stage, GST_TYPE_LA_STAGE_ELEMENT)

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS_ANY);

static void recording_stage_class_init(RecordingStageClass* klass) {
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(element_class, "recording stage", "Filter", "test", "test");
  GstLaStageElementClass* stage_class = GST_LA_STAGE_ELEMENT_CLASS(klass);
  stage_class->open = [](GstLaStageElement* self) {
    record(self, "open");
    // The device is opened before the models load, as the elements do; a failure after it
    // must leave the stage closed again.
    if (!self->stage->open(GST_ELEMENT(self), recorder.device_id)) return false;
    if (recorder.fail_open) GST_ELEMENT_ERROR(self, RESOURCE, READ, ("cannot load"), (nullptr));
    return !recorder.fail_open;
  };
  stage_class->start = [](GstLaStageElement* self) {
    record(self, "start");
    return !recorder.fail_start;
  };
  stage_class->stop = [](GstLaStageElement* self) { record(self, "stop"); };
  stage_class->close = [](GstLaStageElement* self) { record(self, "close"); };
}

static void recording_stage_init(RecordingStage* self) {
  gst_pad_set_activatemode_function(self->parent.sinkpad, [](GstPad*, GstObject*, GstPadMode, gboolean active) {
    return static_cast<gboolean>(!(active && recorder.fail_activation));
  });
}

namespace {

GstElement* make_recording_stage(bool fail_open = false, bool fail_start = false, int device_id = -1) {
  la::test::ensure_gst();
  recorder = Recorder{};
  recorder.fail_open = fail_open;
  recorder.fail_start = fail_start;
  recorder.device_id = device_id;
  return GST_ELEMENT(g_object_new(recording_stage_get_type(), nullptr));
}

TEST(StageElement, MakesTheSubclassesPadsFromItsTemplates) {
  GstElement* e = make_recording_stage();
  auto* stage = reinterpret_cast<GstLaStageElement*>(e);
  GstPad* sink = gst_element_get_static_pad(e, "sink");
  GstPad* src = gst_element_get_static_pad(e, "src");
  EXPECT_EQ(sink, stage->sinkpad);
  EXPECT_EQ(src, stage->srcpad);
  EXPECT_EQ(gst_pad_get_direction(sink), GST_PAD_SINK);
  EXPECT_EQ(GST_PAD_PAD_TEMPLATE(src), gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(e), "src"));
  EXPECT_EQ(e->numpads, 2u);
  gst_object_unref(sink);
  gst_object_unref(src);
  gst_object_unref(e);
}

TEST(StageElement, ChoresRunInStateChangeOrderAroundThePadsActivation) {
  GstElement* e = make_recording_stage();
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_SUCCESS);
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "start"}));
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  // start() before the pads go active; stop() after they were deactivated (the streaming thread
  // has stopped), close() last.
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "start", "stop", "close"}));
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "start", "stop", "close", "open", "close"}));
  gst_object_unref(e);
}

TEST(StageElement, FailedOpenReleasesWhatItLoadedAndStaysInNull) {
  GstElement* e = make_recording_stage(/*fail_open=*/true);
  la::test::BusCollector bus(e);
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  GstState state;
  gst_element_get_state(e, &state, nullptr, 0);
  EXPECT_EQ(state, GST_STATE_NULL);
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "close"}));
  const std::vector<std::string> errors = bus.take(GST_MESSAGE_ERROR);
  ASSERT_EQ(errors.size(), 1u);
  la::test::expect_contains(errors[0], "cannot load");
  // Setting the load right lets the same element start.
  recorder.fail_open = false;
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "close", "open", "close"}));
  gst_object_unref(e);
}

TEST(StageElement, FailedStartStaysInReadyWithTheModels) {
  GstElement* e = make_recording_stage(/*fail_open=*/false, /*fail_start=*/true);
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  GstState state;
  gst_element_get_state(e, &state, nullptr, 0);
  EXPECT_EQ(state, GST_STATE_READY);
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "start"}));  // no stop: it never started
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "start", "close"}));
  gst_object_unref(e);
}

// The change fails after start() (a pad that does not activate): stop() undoes what start() did.
TEST(StageElement, PadsThatDoNotActivateStopWhatStartStarted) {
  GstElement* e = make_recording_stage();
  recorder.fail_activation = true;
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  // GstElement activated the src pad before the sink pad refused, and leaves it so: stop() sees it
  // active, but no streaming thread runs.
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "start", "stop (pads active)"}));
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(recorder.calls, (std::vector<std::string>{"open", "start", "stop (pads active)", "close"}));
  gst_object_unref(e);
}

// A GPU case (skipped without one): the stage that open() took to cuda:0 is closed again by the
// base after the failure, back to the CPU (on the CPU there is nothing to see).
TEST(StageElement, FailedOpenClosesTheGpuStage) {
  if (la::runtime::query_cuda_runtime().device_count == 0) GTEST_SKIP() << "no CUDA device";
  GstElement* e = make_recording_stage(/*fail_open=*/true, /*fail_start=*/false, /*device_id=*/0);
  auto* stage = reinterpret_cast<GstLaStageElement*>(e)->stage;
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  EXPECT_FALSE(stage->is_cuda());
  EXPECT_FALSE(stage->stream().has_value());
  recorder.fail_open = false;
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  EXPECT_TRUE(stage->is_cuda()) << "the same element, opened on the GPU";
  EXPECT_EQ(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  EXPECT_FALSE(stage->is_cuda());
  gst_object_unref(e);
}

}  // namespace

/* gst-launch-1.0 filesrc location=speech.wav ! decodebin ! liveavatarbin checkpoint-dir=ckpt/Wan2.2-S2V-14B lora=ckpt/LiveAvatar/liveavatar.safetensors image=face.jpg ! videoconvert ! x264enc ! mp4mux ! filesink location=avatar.mp4
 *
 * liveavatarbin: any raw audio in, raw avatar video out. Inside:
 *   audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=16000,channels=1
 *   ! laaudiofeat ! liveavatargen ! queue ! lavaedecode ! queue
 * The queue gives the decoder its own thread and holds one block: the
 * generator works on the next block while the decoder decodes, and then waits
 * (backpressure). A deeper queue would hide a decoder slower than real time
 * from the generator's late-block check (skip-late) behind seconds of queued
 * blocks that no LATENCY answer covers. The output queue (up to 5 s of
 * frames) lets the decoder work ahead of a syncing sink, which takes a
 * block's 12 frames one per 40 ms at their time plus the pipeline's latency:
 * without it the decoder would wait for the sink to show the last frame of a
 * block before it decodes the next, whose first frames would then come late
 * (a sink that drops late frames dropped half of them). Properties are those of the inner elements, proxied:
 * checkpoint-dir goes to liveavatargen and lavaedecode, and sets laaudiofeat's
 * model-dir to its wav2vec2-large-xlsr-53-english/ unless audio-model-dir is
 * set (in either order; unsetting audio-model-dir goes back to checkpoint-dir's);
 * cuda-device-id goes to all three. Reference: docs/elements.md.
 */
#include <gst/gst.h>

#include <string>
#include <vector>

#include "gst/element_registration.h"
#include "gst/media_types.h"
#include "gst/property_state.h"

GST_DEBUG_CATEGORY_STATIC(gst_la_bin_debug);
#define GST_CAT_DEFAULT gst_la_bin_debug

namespace {

constexpr const char* kWav2Vec2Dir = "wav2vec2-large-xlsr-53-english";

// One bin property: its name, and the inner elements (by name) and property it stands for.
struct Proxy {
  const char* name;
  std::vector<const char*> elements;
  const char* element_property;
};

const std::vector<Proxy>& proxies() {
  static const std::vector<Proxy> table = {
      {"checkpoint-dir", {"gen", "decode"}, "checkpoint-dir"},
      {"audio-model-dir", {"features"}, "model-dir"},
      {"lora", {"gen"}, "lora"},
      {"image", {"gen"}, "image"},
      {"prompt", {"gen"}, "prompt"},
      {"size", {"gen"}, "size"},
      {"width", {"gen"}, "width"},
      {"height", {"gen"}, "height"},
      {"seed", {"gen"}, "seed"},
      {"steps", {"gen"}, "steps"},
      {"fp8", {"gen"}, "fp8"},
      {"offload", {"gen"}, "offload"},
      {"skip-late", {"gen"}, "skip-late"},
      {"dit-devices", {"gen"}, "dit-devices"},
      {"dit-split", {"gen"}, "dit-split"},
      {"dit-handover", {"gen"}, "dit-handover"},
      {"cuda-device-id", {"gen", "features", "decode"}, "cuda-device-id"},
      {"mode", {"features"}, "mode"},
      {"context", {"features"}, "context"},
      {"lookahead", {"features"}, "lookahead"},
      {"idle-timeout", {"features"}, "idle-timeout"},
      {"online", {"decode"}, "online"},
  };
  return table;
}

const char* factory_of(const char* element) {
  const std::string e = element;
  return e == "features" ? "laaudiofeat" : e == "gen" ? "liveavatargen" : "lavaedecode";
}

// A pspec like the inner element's (type, range, default, description) under the bin.
GParamSpec* clone_pspec(GParamSpec* p, const char* name, const char* blurb) {
  const auto flags = static_cast<GParamFlags>(p->flags & (G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING |
                                                          GST_PARAM_MUTABLE_PAUSED | GST_PARAM_MUTABLE_READY)) |
                     G_PARAM_STATIC_STRINGS;
  const char* nick = g_param_spec_get_nick(p);
  const GType t = G_PARAM_SPEC_TYPE(p);
  if (t == G_TYPE_PARAM_STRING)
    return g_param_spec_string(name, nick, blurb, G_PARAM_SPEC_STRING(p)->default_value, static_cast<GParamFlags>(flags));
  if (t == G_TYPE_PARAM_INT) {
    auto* q = G_PARAM_SPEC_INT(p);
    return g_param_spec_int(name, nick, blurb, q->minimum, q->maximum, q->default_value, static_cast<GParamFlags>(flags));
  }
  if (t == G_TYPE_PARAM_UINT64) {
    auto* q = G_PARAM_SPEC_UINT64(p);
    return g_param_spec_uint64(name, nick, blurb, q->minimum, q->maximum, q->default_value,
                               static_cast<GParamFlags>(flags));
  }
  if (t == G_TYPE_PARAM_DOUBLE) {
    auto* q = G_PARAM_SPEC_DOUBLE(p);
    return g_param_spec_double(name, nick, blurb, q->minimum, q->maximum, q->default_value,
                               static_cast<GParamFlags>(flags));
  }
  if (t == G_TYPE_PARAM_BOOLEAN)
    return g_param_spec_boolean(name, nick, blurb, G_PARAM_SPEC_BOOLEAN(p)->default_value,
                                static_cast<GParamFlags>(flags));
  if (t == G_TYPE_PARAM_ENUM)
    return g_param_spec_enum(name, nick, blurb, p->value_type, G_PARAM_SPEC_ENUM(p)->default_value,
                             static_cast<GParamFlags>(flags));
  g_error("liveavatarbin: cannot proxy property %s of type %s", name, g_type_name(t));
  return nullptr;
}

}  // namespace

struct GstLiveAvatarBin {
  GstBin parent;
  GstElement* features;
  GstElement* gen;
  GstElement* decode;
  bool audio_model_dir_set;
};
struct GstLiveAvatarBinClass {
  GstBinClass parent_class;
};

G_DEFINE_TYPE(GstLiveAvatarBin, gst_la_bin, GST_TYPE_BIN)
GST_ELEMENT_REGISTER_DEFINE(liveavatarbin, "liveavatarbin", GST_RANK_NONE, gst_la_bin_get_type())

#define LA_BIN(obj) (reinterpret_cast<GstLiveAvatarBin*>(obj))

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("audio/x-raw"));
// What lavaedecode makes, CUDA memory included.
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(LA_VIDEO_CAPS_TEMPLATE));

namespace {

GstElement* child(GstLiveAvatarBin* self, const char* name) {
  const std::string n = name;
  return n == "features" ? self->features : n == "gen" ? self->gen : self->decode;
}

// laaudiofeat's model-dir from checkpoint-dir (liveavatargen holds its value): the release's
// wav2vec2 directory inside it, or unset with it.
void derive_audio_model_dir(GstLiveAvatarBin* self) {
  gchar* dir = nullptr;
  g_object_get(self->gen, "checkpoint-dir", &dir, nullptr);
  gchar* model_dir = dir ? g_build_filename(dir, kWav2Vec2Dir, nullptr) : nullptr;
  g_object_set(self->features, "model-dir", model_dir, nullptr);
  g_free(model_dir);
  g_free(dir);
}

}  // namespace

static void gst_la_bin_set_property(GObject* object, guint id, const GValue* value, GParamSpec* pspec) {
  auto* self = LA_BIN(object);
  // One warning, the bin's, for a start property changed while running; the children stay quiet.
  la::gst::warn_if_set_while_running(GST_ELEMENT(self), pspec, value);
  const la::gst::QuietPropertyWarnings children_quiet;
  const Proxy& p = proxies().at(id - 1);
  for (const char* e : p.elements) g_object_set_property(G_OBJECT(child(self, e)), p.element_property, value);
  const std::string name = p.name;
  if (name == "audio-model-dir") {
    self->audio_model_dir_set = g_value_get_string(value) != nullptr;
    // Unset again: back to checkpoint-dir's, whichever was set first.
    if (!self->audio_model_dir_set) derive_audio_model_dir(self);
  }
  if (name == "checkpoint-dir" && !self->audio_model_dir_set) derive_audio_model_dir(self);
}

static void gst_la_bin_get_property(GObject* object, guint id, GValue* value, GParamSpec*) {
  const Proxy& p = proxies().at(id - 1);
  g_object_get_property(G_OBJECT(child(LA_BIN(object), p.elements.front())), p.element_property, value);
}

// NULL->READY without checkpoint-dir: the bin says so itself. Its children change state from the
// sink end, so lavaedecode's own error would come first, suggesting its `vae`, which the bin does
// not have.
static GstStateChangeReturn gst_la_bin_change_state(GstElement* element, GstStateChange transition) {
  auto* self = LA_BIN(element);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    gchar* dir = nullptr;
    g_object_get(self->gen, "checkpoint-dir", &dir, nullptr);
    const bool set = dir && *dir;
    g_free(dir);
    if (!set) {
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("checkpoint-dir is not set"),
                        ("set checkpoint-dir to the Wan2.2-S2V-14B directory (docs/checkpoints.md)"));
      return GST_STATE_CHANGE_FAILURE;
    }
  }
  return GST_ELEMENT_CLASS(gst_la_bin_parent_class)->change_state(element, transition);
}

static void gst_la_bin_class_init(GstLiveAvatarBinClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_la_bin_set_property;
  gobject_class->get_property = gst_la_bin_get_property;
  element_class->change_state = gst_la_bin_change_state;
  guint id = 1;
  for (const Proxy& p : proxies()) {
    GstElementFactory* f = gst_element_factory_find(factory_of(p.elements.front()));
    g_assert(f);
    auto* inner = static_cast<GObjectClass*>(g_type_class_ref(gst_element_factory_get_element_type(f)));
    GParamSpec* spec = g_object_class_find_property(inner, p.element_property);
    g_assert(spec);
    std::string blurb = std::string(g_param_spec_get_blurb(spec)) + " (" + factory_of(p.elements.front());
    for (size_t i = 1; i < p.elements.size(); ++i) blurb += std::string(", ") + factory_of(p.elements[i]);
    blurb += ")";
    if (std::string(p.name) == "checkpoint-dir")
      blurb += "; also sets laaudiofeat model-dir to its " + std::string(kWav2Vec2Dir) + "/ unless audio-model-dir is set";
    // Descriptions must outlive the class: intern them.
    g_object_class_install_property(gobject_class, id++,
                                    clone_pspec(spec, p.name, g_intern_string(blurb.c_str())));
    g_type_class_unref(inner);
    gst_object_unref(f);
  }
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(element_class, "LiveAvatar bin", "Filter/Converter/Audio/Video",
                                        "Any raw audio to a lip-synced avatar video: audioconvert, audioresample, "
                                        "laaudiofeat, liveavatargen, queue, lavaedecode, queue",
                                        "the gst-liveavatar developers");
  GST_DEBUG_CATEGORY_INIT(gst_la_bin_debug, "liveavatarbin", 0, "LiveAvatar bin");
}

static void gst_la_bin_init(GstLiveAvatarBin* self) {
  GstBin* bin = GST_BIN(self);
  GstElement* convert = gst_element_factory_make("audioconvert", "convert");
  GstElement* resample = gst_element_factory_make("audioresample", "resample");
  GstElement* filter = gst_element_factory_make("capsfilter", "format");
  self->features = gst_element_factory_make("laaudiofeat", "features");
  self->gen = gst_element_factory_make("liveavatargen", "gen");
  GstElement* queue = gst_element_factory_make("queue", "queue");
  GstElement* out_queue = gst_element_factory_make("queue", "out");
  self->decode = gst_element_factory_make("lavaedecode", "decode");
  self->audio_model_dir_set = false;
  if (!convert || !resample || !filter || !queue || !out_queue) {
    // gst-plugins-base or core missing: the bin has no pads and fails to link, with this log line.
    GST_ERROR_OBJECT(self, "audioconvert, audioresample, capsfilter or queue is not installed");
    for (GstElement* e : {convert, resample, filter, queue, out_queue})
      if (e) gst_object_unref(gst_object_ref_sink(e));
    // Ours stay, owned by the bin, so the proxied properties still reach them.
    gst_bin_add_many(bin, self->features, self->gen, self->decode, nullptr);
    return;
  }
  // liveavatargen itself sets image and prompt back to the values in use when a change cannot be
  // applied (while PLAYING): an application watching the bin's properties hears of it too.
  for (const char* name : {"image", "prompt"})
    g_signal_connect_object(self->gen, (std::string("notify::") + name).c_str(),
                            G_CALLBACK(+[](GObject*, GParamSpec* spec, gpointer bin) {
                              g_object_notify(G_OBJECT(bin), spec->name);
                            }),
                            self, static_cast<GConnectFlags>(0));
  GstCaps* caps = gst_caps_from_string("audio/x-raw,format=F32LE,rate=16000,channels=1,layout=interleaved");
  g_object_set(filter, "caps", caps, nullptr);
  gst_caps_unref(caps);
  g_object_set(queue, "max-size-buffers", 1u, "max-size-bytes", 0u, "max-size-time", guint64{0}, nullptr);
  g_object_set(out_queue, "max-size-buffers", 0u, "max-size-bytes", 0u, "max-size-time", 5 * GST_SECOND, nullptr);
  gst_bin_add_many(bin, convert, resample, filter, self->features, self->gen, queue, self->decode, out_queue, nullptr);
  gst_element_link_many(convert, resample, filter, self->features, self->gen, queue, self->decode, out_queue,
                        nullptr);

  // The class's own templates (owned by the class): gst_static_pad_template_get
  // would make a new floating template per instance that nothing releases.
  GstElementClass* klass = GST_ELEMENT_GET_CLASS(self);
  GstPad* sink = gst_element_get_static_pad(convert, "sink");
  gst_element_add_pad(GST_ELEMENT(self), gst_ghost_pad_new_from_template(
                                             "sink", sink, gst_element_class_get_pad_template(klass, "sink")));
  gst_object_unref(sink);
  GstPad* src = gst_element_get_static_pad(out_queue, "src");
  gst_element_add_pad(GST_ELEMENT(self), gst_ghost_pad_new_from_template(
                                             "src", src, gst_element_class_get_pad_template(klass, "src")));
  gst_object_unref(src);
}

// liveavatarbin's properties: every one reaches the inner elements it stands for (the table
// below is written from docs/elements.md, apart from the bin's own), and laaudiofeat's
// model-dir follows checkpoint-dir unless audio-model-dir is set, in either order. What the
// inner elements then do with the values is their own tests' business.
#include <gtest/gtest.h>

#include <gst/gst.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/gst/gst_test_util.h"

namespace {

struct Target {
  const char* child;  // the inner element's name in the bin
  const char* property;
};

// What each of the bin's properties stands for (docs/elements.md, "liveavatarbin").
const std::map<std::string, std::vector<Target>>& expected_targets() {
  static const std::map<std::string, std::vector<Target>> table = {
      {"checkpoint-dir", {{"gen", "checkpoint-dir"}, {"decode", "checkpoint-dir"}}},
      {"audio-model-dir", {{"features", "model-dir"}}},
      {"lora", {{"gen", "lora"}}},
      {"image", {{"gen", "image"}}},
      {"prompt", {{"gen", "prompt"}}},
      {"size", {{"gen", "size"}}},
      {"width", {{"gen", "width"}}},
      {"height", {{"gen", "height"}}},
      {"seed", {{"gen", "seed"}}},
      {"steps", {{"gen", "steps"}}},
      {"fp8", {{"gen", "fp8"}}},
      {"offload", {{"gen", "offload"}}},
      {"skip-late", {{"gen", "skip-late"}}},
      {"dit-devices", {{"gen", "dit-devices"}}},
      {"dit-split", {{"gen", "dit-split"}}},
      {"dit-handover", {{"gen", "dit-handover"}}},
      {"cuda-device-id", {{"gen", "cuda-device-id"}, {"features", "cuda-device-id"}, {"decode", "cuda-device-id"}}},
      {"mode", {{"features", "mode"}}},
      {"context", {{"features", "context"}}},
      {"lookahead", {{"features", "lookahead"}}},
      {"idle-timeout", {{"features", "idle-timeout"}}},
      {"online", {{"decode", "online"}}},
  };
  return table;
}

// The bin and its inner elements, released together.
struct Bin {
  GstElement* bin = nullptr;
  Bin() {
    la::test::ensure_gst();
    bin = gst_element_factory_make("liveavatarbin", nullptr);
    if (bin) gst_object_ref_sink(bin);
  }
  ~Bin() {
    if (bin) gst_object_unref(bin);
  }
  // A new reference to the inner element `name`.
  GstElement* child(const char* name) const { return gst_bin_get_by_name(GST_BIN(bin), name); }
  std::string string_of(const char* child_name, const char* property) const {
    GstElement* c = child(child_name);
    gchar* v = nullptr;
    g_object_get(c, property, &v, nullptr);
    gst_object_unref(c);
    std::string s = v ? v : "(null)";
    g_free(v);
    return s;
  }
};

// A value for `spec` other than its default, and one the property takes (strings that are
// parsed get well-formed text; numbers stay inside the range, on a 20 ms grid for seconds).
void other_value(GParamSpec* spec, GValue* v) {
  const std::string name = spec->name;
  g_value_init(v, spec->value_type);
  const GType t = G_PARAM_SPEC_TYPE(spec);
  if (t == G_TYPE_PARAM_STRING) {
    const std::string s = name == "size"          ? "128*96"
                          : name == "dit-devices" ? "cpu,cpu"
                          : name == "prompt"      ? "a person reading the news"
                                                  : "/nonexistent/" + name;
    g_value_set_string(v, s.c_str());
  } else if (t == G_TYPE_PARAM_INT) {
    auto* p = G_PARAM_SPEC_INT(spec);
    g_value_set_int(v, p->default_value < p->maximum ? p->default_value + 1 : p->default_value - 1);
  } else if (t == G_TYPE_PARAM_UINT64) {
    auto* p = G_PARAM_SPEC_UINT64(spec);
    g_value_set_uint64(v, p->default_value < p->maximum ? p->default_value + 1 : p->default_value - 1);
  } else if (t == G_TYPE_PARAM_DOUBLE) {
    auto* p = G_PARAM_SPEC_DOUBLE(spec);
    g_value_set_double(v, p->default_value + 0.1 <= p->maximum ? p->default_value + 0.1 : p->default_value - 0.1);
  } else if (t == G_TYPE_PARAM_BOOLEAN) {
    g_value_set_boolean(v, !G_PARAM_SPEC_BOOLEAN(spec)->default_value);
  } else if (t == G_TYPE_PARAM_ENUM) {
    GEnumClass* e = G_PARAM_SPEC_ENUM(spec)->enum_class;
    const gint def = G_PARAM_SPEC_ENUM(spec)->default_value;
    for (guint i = 0; i < e->n_values; ++i)
      if (e->values[i].value != def) {
        g_value_set_enum(v, e->values[i].value);
        break;
      }
  } else {
    ADD_FAILURE() << name << ": a property type this test does not know (" << g_type_name(t) << ")";
  }
}

std::string text_of(const GValue* v) {
  gchar* s = g_strdup_value_contents(v);
  std::string out = s;
  g_free(s);
  return out;
}

}  // namespace

TEST(LiveAvatarBin, EveryPropertyReachesTheElementsItStandsFor) {
  Bin b;
  ASSERT_TRUE(b.bin);
  guint n = 0;
  GParamSpec** specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(b.bin), &n);
  std::set<std::string> seen;
  for (guint i = 0; i < n; ++i) {
    GParamSpec* spec = specs[i];
    if (spec->owner_type != G_OBJECT_TYPE(b.bin)) continue;  // GstBin's and GstObject's own
    const std::string name = spec->name;
    SCOPED_TRACE(name);
    const auto it = expected_targets().find(name);
    if (it == expected_targets().end()) {
      ADD_FAILURE() << "liveavatarbin has a property this test (and docs/elements.md) does not list";
      continue;
    }
    seen.insert(name);
    GValue set = G_VALUE_INIT, from_bin = G_VALUE_INIT;
    const bool writable = (spec->flags & G_PARAM_WRITABLE) != 0;
    if (writable) {
      other_value(spec, &set);
      g_object_set_property(G_OBJECT(b.bin), name.c_str(), &set);
    }
    g_value_init(&from_bin, spec->value_type);
    g_object_get_property(G_OBJECT(b.bin), name.c_str(), &from_bin);
    if (writable) {
      EXPECT_EQ(g_param_values_cmp(spec, &set, &from_bin), 0) << text_of(&set) << " read back as " << text_of(&from_bin);
    }
    for (const Target& t : it->second) {
      GstElement* c = b.child(t.child);
      ASSERT_NE(c, nullptr) << t.child;
      GParamSpec* inner = g_object_class_find_property(G_OBJECT_GET_CLASS(c), t.property);
      ASSERT_NE(inner, nullptr) << t.child << "." << t.property;
      GValue got = G_VALUE_INIT;
      g_value_init(&got, inner->value_type);
      g_object_get_property(G_OBJECT(c), t.property, &got);
      const GValue* want = writable ? &set : &from_bin;
      EXPECT_EQ(g_param_values_cmp(inner, want, &got), 0)
          << t.child << "." << t.property << " is " << text_of(&got) << ", the bin was given " << text_of(want);
      g_value_unset(&got);
      gst_object_unref(c);
    }
    if (writable) g_value_unset(&set);
    g_value_unset(&from_bin);
  }
  g_free(specs);
  EXPECT_EQ(seen.size(), expected_targets().size()) << "a property listed here is missing from the bin";
}

// The read-only width and height are the generator's: 0 before loading, the output size after
// NULL->READY (the test above compares the 0s only).
TEST(LiveAvatarBin, WidthAndHeightAreTheGeneratorsOnceLoaded) {
  Bin b;
  ASSERT_TRUE(b.bin);
  la::test::TempDir dir;
  const std::string image = la::test::write_test_png(dir.file("face.png"), 160, 96, "ball");
  const auto ckpt = la::test::tiny_checkpoint_dir();
  const std::string lora = (ckpt.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string();
  g_object_set(b.bin, "checkpoint-dir", ckpt.c_str(), "lora", lora.c_str(), "image", image.c_str(), "size", "128*64",
               nullptr);
  ASSERT_EQ(gst_element_set_state(b.bin, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  gint width = 0, height = 0, gen_width = 0, gen_height = 0;
  g_object_get(b.bin, "width", &width, "height", &height, nullptr);
  GstElement* gen = b.child("gen");
  g_object_get(gen, "width", &gen_width, "height", &gen_height, nullptr);
  gst_object_unref(gen);
  EXPECT_EQ(width, 128);  // 5:3 in a 128*64 area: 128x64
  EXPECT_EQ(height, 64);
  EXPECT_EQ(width, gen_width);
  EXPECT_EQ(height, gen_height);
  gst_element_set_state(b.bin, GST_STATE_NULL);
}

// Without checkpoint-dir the bin's own error says so (lavaedecode, which starts first, would
// suggest its `vae`, which the bin does not have), and NULL->READY fails.
TEST(LiveAvatarBin, MissingCheckpointDirIsTheBinsError) {
  Bin b;
  ASSERT_TRUE(b.bin);
  la::test::BusCollector bus(b.bin);
  EXPECT_EQ(gst_element_set_state(b.bin, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  const auto errors = bus.take();
  ASSERT_EQ(errors.size(), 1u);
  la::test::expect_contains(errors[0], "checkpoint-dir is not set");
  EXPECT_EQ(errors[0].find("vae"), std::string::npos) << errors[0];
  gst_element_set_state(b.bin, GST_STATE_NULL);
}

TEST(LiveAvatarBin, AudioModelDirWinsOverCheckpointDirInEitherOrder) {
  const std::string wav2vec2 = "/wav2vec2-large-xlsr-53-english";
  {
    Bin b;
    ASSERT_TRUE(b.bin);
    EXPECT_EQ(b.string_of("features", "model-dir"), "(null)");
    g_object_set(b.bin, "checkpoint-dir", "/ckpt/a", nullptr);
    EXPECT_EQ(b.string_of("features", "model-dir"), "/ckpt/a" + wav2vec2);
    g_object_set(b.bin, "audio-model-dir", "/models/w2v", nullptr);
    EXPECT_EQ(b.string_of("features", "model-dir"), "/models/w2v");
    g_object_set(b.bin, "checkpoint-dir", "/ckpt/b", nullptr);
    EXPECT_EQ(b.string_of("features", "model-dir"), "/models/w2v") << "audio-model-dir was set";
    EXPECT_EQ(b.string_of("gen", "checkpoint-dir"), "/ckpt/b");
    // Unset: back to the checkpoint's, without setting checkpoint-dir again.
    g_object_set(b.bin, "audio-model-dir", nullptr, nullptr);
    EXPECT_EQ(b.string_of("features", "model-dir"), "/ckpt/b" + wav2vec2);
    g_object_set(b.bin, "checkpoint-dir", nullptr, nullptr);
    EXPECT_EQ(b.string_of("features", "model-dir"), "(null)");
  }
  {
    Bin b;  // audio-model-dir first
    ASSERT_TRUE(b.bin);
    g_object_set(b.bin, "audio-model-dir", "/models/w2v", nullptr);
    g_object_set(b.bin, "checkpoint-dir", "/ckpt/a", nullptr);
    EXPECT_EQ(b.string_of("features", "model-dir"), "/models/w2v");
    EXPECT_EQ(b.string_of("decode", "checkpoint-dir"), "/ckpt/a");
  }
}

// An element made without a name is called after its factory and a number (liveavatargen0),
// as GStreamer's own are: error messages and GST_DEBUG lines name it so.
TEST(LiveAvatarElements, DefaultNamesAreTheFactoryNames) {
  la::test::ensure_gst();
  for (const std::string factory : {"laaudiofeat", "liveavatargen", "lavaedecode", "liveavatarbin"}) {
    GstElement* e = gst_element_factory_make(factory.c_str(), nullptr);
    ASSERT_NE(e, nullptr) << factory;
    gchar* name = gst_object_get_name(GST_OBJECT(e));
    const std::string n = name;
    g_free(name);
    gst_object_unref(gst_object_ref_sink(e));
    ASSERT_EQ(n.rfind(factory, 0), 0u) << n;
    EXPECT_FALSE(n.size() == factory.size()) << n;
    EXPECT_EQ(n.find_first_not_of("0123456789", factory.size()), std::string::npos) << n;
  }
}

// Only image, prompt and skip-late apply while PLAYING (docs/elements.md); every other writable
// property is read when the element starts, and gst-inspect-1.0 says "changeable only in NULL
// or READY state" for it. The bin's copies carry the same flags.
TEST(LiveAvatarElements, OnlyImagePromptAndSkipLateAreChangeableWhilePlaying) {
  la::test::ensure_gst();
  const std::set<std::string> playing = {"image", "prompt", "skip-late"};
  for (const std::string factory : {"laaudiofeat", "liveavatargen", "lavaedecode", "liveavatarbin"}) {
    auto* e = static_cast<GstElement*>(gst_object_ref_sink(gst_element_factory_make(factory.c_str(), nullptr)));
    ASSERT_NE(e, nullptr) << factory;
    guint n = 0;
    GParamSpec** specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(e), &n);
    for (guint i = 0; i < n; ++i) {
      const GParamSpec* spec = specs[i];
      if (spec->owner_type == GST_TYPE_OBJECT || !(spec->flags & G_PARAM_WRITABLE)) continue;  // name, parent
      if (spec->owner_type == GST_TYPE_BIN) continue;  // async-handling, message-forward: GstBin's own
      const bool live = playing.count(spec->name) > 0;
      EXPECT_EQ((spec->flags & GST_PARAM_MUTABLE_PLAYING) != 0, live) << factory << " " << spec->name;
      EXPECT_EQ((spec->flags & GST_PARAM_MUTABLE_READY) != 0, !live) << factory << " " << spec->name;
    }
    g_free(specs);
    gst_object_unref(e);
  }
}

// A property read at the start, changed while PLAYING, posts a warning naming it (it used to be
// taken silently and do nothing until the next start); the same value again, or a property that
// applies while PLAYING, does not. The warning comes from another thread (the setter's may hold
// a lock its sync bus handler takes): it is waited for, and only "changed while" warnings count
// (a slow live pipeline may warn about its pace at any time).
TEST(LiveAvatarBin, ChangingAStartPropertyWhilePlayingWarns) {
  la::test::TempDir dir;
  const auto ckpt = la::test::tiny_checkpoint_dir();
  GstElement* p = la::test::parse(
      "audiotestsrc is-live=true samplesperbuffer=1600 ! liveavatarbin name=avatar checkpoint-dir=" + ckpt.string() +
      " lora=" + (ckpt.parent_path() / "LiveAvatar" / "liveavatar.safetensors").string() +
      " image=" + la::test::write_test_png(dir.file("face.png"), 96, 96, "ball") + " size=64*64 ! fakesink");
  ASSERT_TRUE(p);
  ASSERT_NE(gst_element_set_state(p, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  ASSERT_EQ(gst_element_get_state(p, nullptr, nullptr, 60 * GST_SECOND), GST_STATE_CHANGE_SUCCESS);
  GstElement* avatar = gst_bin_get_by_name(GST_BIN(p), "avatar");
  GstBus* bus = gst_element_get_bus(p);
  // The next "changed while" warning within `seconds`, or "", and the element that posted it.
  std::string poster;
  auto next_change_warning = [&](int seconds = 10) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < until) {
      GstMessage* m = gst_bus_timed_pop_filtered(bus, 100 * GST_MSECOND, GST_MESSAGE_WARNING);
      if (!m) continue;
      const std::string text = la::test::message_text(m);
      poster = GST_OBJECT_NAME(GST_MESSAGE_SRC(m));
      gst_message_unref(m);
      if (text.find("changed while") != std::string::npos) return text;
    }
    return std::string();
  };
  g_object_set(avatar, "steps", 8, nullptr);
  la::test::expect_contains(next_change_warning(), "steps changed while PLAYING: it is read when the element starts");
  // Neither of these warns; the seed change after them does, and is the next warning.
  g_object_set(avatar, "steps", 8, nullptr);  // unchanged now
  g_object_set(avatar, "prompt", "A person smiling", nullptr);
  g_object_set(avatar, "seed", guint64{7}, nullptr);
  la::test::expect_contains(next_change_warning(), "seed changed while PLAYING");
  EXPECT_EQ(poster, "avatar");
  // checkpoint-dir goes to two children and makes a third's model-dir: still one warning, the
  // bin's (each child used to post its own: three).
  g_object_set(avatar, "checkpoint-dir", dir.path().c_str(), nullptr);
  la::test::expect_contains(next_change_warning(), "checkpoint-dir changed while PLAYING");
  EXPECT_EQ(poster, "avatar");
  EXPECT_EQ(next_change_warning(2), "") << "from " << poster;

  // An image that cannot be applied: the generator keeps the picture in use and sets the
  // property back, and the bin notifies its own `image` for it (the set's notify, then the
  // reverted value's).
  const std::string face = dir.file("face.png"), missing = dir.file("missing.png");
  std::vector<std::string> notified;
  const gulong id = g_signal_connect(avatar, "notify::image", G_CALLBACK(+[](GObject* o, GParamSpec*, gpointer seen) {
                                       gchar* v = nullptr;
                                       g_object_get(o, "image", &v, nullptr);
                                       static_cast<std::vector<std::string>*>(seen)->push_back(v ? v : "");
                                       g_free(v);
                                     }),
                                     &notified);
  g_object_set(avatar, "image", missing.c_str(), nullptr);
  std::string applied;
  for (int waited_ms = 0; waited_ms < 20000 && applied.empty(); waited_ms += 100) {
    if (GstMessage* m = gst_bus_timed_pop_filtered(bus, 100 * GST_MSECOND, GST_MESSAGE_WARNING)) {
      const std::string text = la::test::message_text(m);
      if (text.find("cannot apply the new image") != std::string::npos) applied = text;
      gst_message_unref(m);
    }
  }
  la::test::expect_contains(applied, missing);
  g_signal_handler_disconnect(avatar, id);
  ASSERT_GE(notified.size(), 2u);
  EXPECT_EQ(notified.back(), face) << "the bin reads back the picture in use";
  gst_object_unref(bus);
  gst_object_unref(avatar);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}

/* gst-launch-1.0 filesrc location=speech.wav ! wavparse ! audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=16000,channels=1 ! laaudiofeat model-dir=ckpt/Wan2.2-S2V-14B/wav2vec2-large-xlsr-53-english ! liveavatargen checkpoint-dir=ckpt/Wan2.2-S2V-14B lora=ckpt/LiveAvatar/liveavatar.safetensors image=face.jpg prompt="A woman talking" ! queue ! lavaedecode checkpoint-dir=ckpt/Wan2.2-S2V-14B ! videoconvert ! x264enc ! mp4mux ! filesink location=avatar.mp4
 *
 * liveavatargen: audio feature blocks in, one latent block [16,3,h,w] out per
 * block with the same timestamps: the causal S2V DiT (Wan2.2-S2V-14B + the
 * LiveAvatar LoRA) with per-step KV caches, sink frames from the reference
 * image, 4-step flow-matching Euler (engine/session/generation_session.h).
 * Reference: docs/elements.md.
 *
 * The output size comes from `size` (an area) and the image's aspect ratio by
 * the reference's 64-divisible rule and is fixed for the element's lifetime in
 * PAUSED/PLAYING; `width`/`height` report it. `prompt` and `image` may change
 * while PLAYING: they are encoded on the streaming thread and apply from the
 * next block (a new image is resized/cropped to the running size). FLUSH and
 * a new segment after data start a new stream (position 0, fresh caches, the
 * seed's noise again). Blocks are never dropped on QoS.
 */
#include <gst/gst.h>

#include <ATen/ATen.h>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "elements/avatar_generator.h"
#include "engine/io/json_config.h"
#include "engine/parallel/memory_plan.h"
#include "engine/nn/fp8_linear.h"
#include "engine/runtime/cuda_runtime_info.h"
#include "gst/device.h"
#include "gst/dit_devices.h"
#include "gst/element_registration.h"
#include "gst/image_file.h"
#include "gst/media_types.h"
#include "gst/memory_usage.h"
#include "gst/model_cache.h"
#include "gst/pad_queries.h"
#include "gst/property_state.h"
#include "gst/refused_caps.h"
#include "gst/block_latency.h"
#include "gst/late_blocks.h"
#include "gst/progress.h"
#include "gst/stage_device.h"
#include "gst/stage_element.h"
#include "gst/tensor_memory.h"

GST_DEBUG_CATEGORY_STATIC(gst_la_gen_debug);
#define GST_CAT_DEFAULT gst_la_gen_debug

namespace fs = std::filesystem;

namespace {

constexpr GstClockTime kBlockDuration = 12 * GST_SECOND / 25;
constexpr const char* kDefaultSize = "720*400";

enum {
  PROP_0,
  PROP_CHECKPOINT_DIR,
  PROP_LORA,
  PROP_IMAGE,
  PROP_PROMPT,
  PROP_SIZE,
  PROP_WIDTH,
  PROP_HEIGHT,
  PROP_SEED,
  PROP_STEPS,
  PROP_CUDA_DEVICE_ID,
  PROP_FP8,
  PROP_OFFLOAD,
  PROP_SKIP_LATE,
  PROP_DIT_DEVICES,
  PROP_DIT_SPLIT,
  PROP_DIT_HANDOVER,
};

struct Settings {
  std::string checkpoint_dir, lora, image, prompt, size = kDefaultSize;
  guint64 seed = 42;
  int steps = 4;
  int cuda_device_id = -1;
  bool fp8 = false;
  bool offload = false;
  bool skip_late = true;
  std::string dit_devices;  // "" = cuda-device-id alone
  la::parallel::DitSplit dit_split = la::parallel::DitSplit::kAuto;
  la::parallel::GpuHandover dit_handover = la::parallel::GpuHandover::kNccl;
};

// A block submitted to a multi-device generator and not yet pushed.
struct InFlight {
  GstClockTime pts, duration;
  bool discont;
};

struct State {
  explicit State(la::gst::StageDevice& stage_device) : stage(stage_device) {}
  std::mutex lock;  // guards settings, the pending changes and the output size
  Settings settings;
  std::optional<std::string> pending_prompt, pending_image;  // set while `started`
  // From start_stream()'s copy of the settings until PAUSED->READY: prompt= / image=
  // become pending changes. A flag under the lock, not GST_STATE(), so that a
  // change made while READY->PAUSED runs is neither lost nor read unlocked.
  bool started = false;
  int width = 0, height = 0;  // 0 until READY

  // Loaded at NULL->READY.
  la::elements::GeneratorModels models;
  c10::Device device{c10::kCPU};
  la::gst::StageDevice& stage;  // the device and this stage's CUDA stream (the base class's)
  at::Tensor image_rgb;
  std::string image_file;  // what image_rgb was decoded from
  std::string prompt_in_use;  // the prompt encoded last (under `lock`)
  // From READY->PAUSED on: the streaming thread's.
  std::unique_ptr<la::elements::AvatarGenerator> generator;
  la::gst::FeaturesShape features;
  bool have_caps = false;
  la::gst::RefusedCaps refused_caps;  // posted once each
  bool tensor_memory_out = false;  // negotiated memory:LiveAvatarTensor: latents stay on the device
  bool discont = true;
  uint64_t blocks_out = 0;
  bool change_cost_a_block = false;  // the last change's encode made its block late: it was skipped
  std::chrono::steady_clock::time_point last_push;  // when the last block went out
  std::deque<InFlight> in_flight;  // in submission order
  // Measured processing time per block: the LATENCY answer, and the warning
  // when a live pipeline cannot keep up.
  la::gst::BlockLatency latency;
  // Live pipelines slower than real time: blocks skipped to stay on time (skip-late).
  la::gst::LateBlocks late;
  GstSegment segment{};  // upstream's (UNDEFINED until the first), for the blocks' running times
};

}  // namespace

struct GstLiveAvatarGen {
  GstLaStageElement parent;  // the pads, the stage's device, the state changes (gst/stage_element.h)
  State* st;
};
struct GstLiveAvatarGenClass {
  GstLaStageElementClass parent_class;
};

G_DEFINE_TYPE(GstLiveAvatarGen, gst_la_gen, GST_TYPE_LA_STAGE_ELEMENT)
GST_ELEMENT_REGISTER_DEFINE(liveavatargen, "liveavatargen", GST_RANK_NONE, gst_la_gen_get_type())

#define LA_GEN(obj) (reinterpret_cast<GstLiveAvatarGen*>(obj))

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(LA_FEATURES_CAPS_TEMPLATE));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(LA_LATENT_CAPS_TEMPLATE));

namespace {

la::gst::LatentShape output_shape(const State* st) {
  la::gst::LatentShape s;
  s.channels = static_cast<int>(st->models.dit->config().out_dim);
  s.frames = 3;
  s.height = st->height / 8;
  s.width = st->width / 8;
  s.dtype = st->models.dit->dtype();
  return s;
}

// Every file the element needs, checked before anything is loaded so that the
// error names the first missing one.
bool check_files(GstLiveAvatarGen* self, const Settings& s) {
  std::error_code ec;
  auto missing = [&](const char* what, const std::string& path, const char* hint) {
    if (path.empty())
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("%s is not set", what), ("%s", hint));
    else
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("%s '%s' does not exist", what, path.c_str()), ("%s", hint));
    return false;
  };
  if (s.checkpoint_dir.empty())
    return missing("checkpoint-dir", "", "set checkpoint-dir to the Wan2.2-S2V-14B directory (docs/checkpoints.md)");
  const fs::path dir(s.checkpoint_dir);
  if (!fs::is_directory(dir, ec))
    return missing("checkpoint-dir", s.checkpoint_dir, "expected the Wan2.2-S2V-14B directory (docs/checkpoints.md)");
  for (const char* f : {"config.json", "Wan2.1_VAE.pth", "models_t5_umt5-xxl-enc-bf16.pth", "google/umt5-xxl"})
    if (!fs::exists(dir / f, ec))
      return missing("checkpoint file", (dir / f).string(),
                     "checkpoint-dir must be the Wan2.2-S2V-14B directory as downloaded (docs/checkpoints.md)");
  if (!s.lora.empty() && !fs::is_regular_file(s.lora, ec))
    return missing("lora", s.lora, "expected the LiveAvatar liveavatar.safetensors file");
  if (s.image.empty()) return missing("image", "", "set image to the reference picture (PNG, JPEG, ...)");
  return true;
}

// The output size for the image and size= (the image decides the aspect).
bool output_size(GstLiveAvatarGen* self, const Settings& s, const at::Tensor& rgb, la::video::Size* out) {
  try {
    *out = la::video::output_size_for_area(rgb.size(0), rgb.size(1), la::video::parse_area(s.size));
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("size '%s': %s", s.size.c_str(), e.what()), (nullptr));
    return false;
  }
  return true;
}

// dit-devices with several entries: plans the layout (dit-split, auto
// resolved by the planner), refuses one that does not fit with what would,
// and loads each stage's part of the DiT on its device. Posts the plan as an
// element message "liveavatargen-plan".
bool load_dit_stages(GstLiveAvatarGen* self, const Settings& s, const std::vector<int>& ids, at::ScalarType dtype,
                     const la::models::Umt5Config& t5, la::elements::GeneratorModels& m) {
  State* st = self->st;
  const fs::path dir(s.checkpoint_dir);
  la::parallel::PlanRequest req;
  la::video::Size out{};
  try {
    req.cfg = la::models::S2vDitConfig::from_json(la::io::JsonConfig::load((dir / "config.json").string()));
    // The encoders as loaded (device 0 holds them), not the release's.
    req.t5 = t5;
    req.vae = m.vae->config();
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("cannot read the DiT config: %s", e.what()), (nullptr));
    return false;
  }
  if (!output_size(self, s, st->image_rgb, &out)) return false;
  req.width = out.width;
  req.height = out.height;
  req.steps = s.steps;
  req.split = s.dit_split;
  req.fp8 = s.fp8;
  req.offload = s.offload;
  req.dtype = dtype;
  req.cpu = ids.front() < 0;
  // LA_DEVICE_MEMORY_GIB: the memory each device may use, when less than all
  // of it is ours (other processes on the GPU; tests).
  const char* limit = std::getenv("LA_DEVICE_MEMORY_GIB");
  for (int id : ids)
    req.device_gib.push_back(limit && *limit ? std::atof(limit)
                                             : static_cast<double>(id < 0 ? la::gst::host_memory_bytes()
                                                                          : la::runtime::device_total_memory(id)) /
                                                   (1024.0 * 1024.0 * 1024.0));
  la::parallel::MemoryPlan plan;
  try {
    plan = la::parallel::plan_memory(req);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("cannot plan dit-devices=%s: %s", s.dit_devices.c_str(), e.what()),
                      (nullptr));
    return false;
  }
  const std::string table = la::parallel::format_plan(plan);
  GST_INFO_OBJECT(self, "plan for dit-devices=%s:\n%s", s.dit_devices.c_str(), table.c_str());
  gst_element_post_message(
      GST_ELEMENT(self),
      gst_message_new_element(GST_OBJECT(self),
                              gst_structure_new("liveavatargen-plan", "split", G_TYPE_STRING,
                                                la::parallel::dit_split_name(plan.split), "fits", G_TYPE_BOOLEAN,
                                                plan.fits, "table", G_TYPE_STRING, table.c_str(), nullptr)));
  if (!plan.fits) {
    const std::string why = plan.error.empty() ? table.substr(table.rfind('\n', table.size() - 2) + 1) : plan.error;
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS,
                      ("dit-devices=%s, dit-split=%s does not fit: %s", s.dit_devices.c_str(),
                       la::parallel::dit_split_name(s.dit_split), why.c_str()),
                      ("%s\n%s", la::parallel::plan_suggestion(plan).c_str(), table.c_str()));
    return false;
  }
  std::string what = "the DiT";
  try {
    m.dit_stages = la::parallel::assign_stages(plan.split, static_cast<int64_t>(ids.size()), req.cfg.num_layers,
                                               s.steps);
    for (size_t d = 0; d < ids.size(); ++d) {
      const c10::Device device = la::gst::resolve_device(ids[d]);
      la::models::S2vDitOptions options;
      options.fp8 = s.fp8;
      options.layers = m.dit_stages[d].layers;
      const int64_t begin = options.layers.begin, end = options.layers.end_of(req.cfg);
      what = "the DiT's blocks " + std::to_string(begin) + ".." + std::to_string(end - 1) + " for " + device.str();
      // Stages on one device holding the same blocks share them (steps split: whole replicas).
      m.dit_parts.push_back(la::gst::shared_model<la::models::S2vDit>(
          dir.string(), device, dtype,
          "lora=" + s.lora + (s.fp8 ? ";fp8" : "") + ";layers=" + std::to_string(begin) + "-" + std::to_string(end),
          [&] { return la::models::S2vDit::load(dir.string(), s.lora, device, dtype, options); }));
    }
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("cannot load %s from '%s': %s", what.c_str(), s.checkpoint_dir.c_str(),
                                             e.what()),
                      ("checkpoint-dir must be the Wan2.2-S2V-14B directory; lora the liveavatar.safetensors"));
    return false;
  }
  m.dit = m.dit_parts.front();
  // The element's stage waits for its own device's loading; the other DiT devices here (their
  // stages' streams are non-blocking, and fp8 quantises on the default stream).
  for (const auto& part : m.dit_parts) la::gst::wait_for_loading(part->device());
  GST_INFO_OBJECT(self, "DiT over %zu devices (%s split), %s", ids.size(), la::parallel::dit_split_name(plan.split),
                  table.substr(table.rfind('\n', table.size() - 2) + 1).c_str());
  return true;
}

// NULL->READY (gst/stage_element.h).
bool load_models(GstLaStageElement* element) {
  auto* self = LA_GEN(element);
  State* st = self->st;
  Settings s;
  {
    std::lock_guard<std::mutex> g(st->lock);
    s = st->settings;
  }
  if (!check_files(self, s)) return false;
  int64_t area = 0;
  try {
    area = la::video::parse_area(s.size);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("%s", e.what()), (nullptr));
    return false;
  }
  std::vector<int> dit_ids;
  try {
    dit_ids = la::gst::parse_dit_devices(s.dit_devices);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("%s", e.what()),
                      ("dit-devices lists the DiT's devices: CUDA ordinals or cpu, comma-separated"));
    return false;
  }
  // The first DiT device is the element's: the encoders and the stage's stream.
  if (!st->stage.open(GST_ELEMENT(self), dit_ids.empty() ? s.cuda_device_id : dit_ids.front())) return false;
  st->device = st->stage.device();
  // fp8 on a device without fp8 matmul fails here, before 30 GB are loaded
  // (the weight shapes are checked again when they are quantised).
  const la::nn::Fp8Target fp8_target = la::nn::fp8_target(st->device);
  auto fp8_error = [&](const std::string& why) {
    const std::string on = st->device.is_cuda() ? st->device.str() + " (compute capability " +
                                                      std::to_string(fp8_target.major) + "." +
                                                      std::to_string(fp8_target.minor) + ")"
                                                : st->device.str();
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("fp8=true cannot run on %s: %s", on.c_str(), why.c_str()),
                      ("set fp8=false (bf16 linears, twice the weight memory), or use a GPU of compute capability "
                       "8.9 or later (Ada, Hopper) with cuda-device-id"));
    return false;
  };
  if (s.fp8)
    if (const std::string why = la::nn::fp8_unsupported_reason(fp8_target, {}); !why.empty()) return fp8_error(why);
  try {
    st->image_rgb = la::gst::load_image_rgb(s.image);
    st->image_file = s.image;
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("%s", e.what()), ("the image property names the reference picture"));
    return false;
  }
  const c10::Device device = st->device;
  const at::ScalarType dtype = st->stage.dtype();
  const fs::path dir(s.checkpoint_dir);
  std::string what = "the DiT";
  try {
    la::elements::GeneratorModels m;
    la::models::S2vDitOptions options;
    options.fp8 = s.fp8;
    if (dit_ids.size() <= 1) {  // several devices: after the encoders, which the plan counts
      m.dit = la::gst::shared_model<la::models::S2vDit>(
          dir.string(), device, dtype, "lora=" + s.lora + (s.fp8 ? ";fp8" : ""),
          [&] { return la::models::S2vDit::load(dir.string(), s.lora, device, dtype, options); });
    }
    what = "the VAE";
    const std::string vae = (dir / "Wan2.1_VAE.pth").string();
    m.vae = la::gst::shared_model<la::models::WanVae>(vae, device, dtype, "",
                                                      [&] { return la::models::WanVae::load(vae, device, dtype); });
    what = "the umT5 text encoder";
    const std::string t5 = (dir / "models_t5_umt5-xxl-enc-bf16.pth").string();
    m.load_t5 = [t5, device, dtype] {
      return la::gst::shared_model<la::models::Umt5Encoder>(
          t5, device, dtype, "", [&] { return la::models::Umt5Encoder::load(t5, device, dtype); });
    };
    // Loaded now either way, so a bad file fails NULL->READY; offload drops it
    // again and reloads it for each prompt.
    m.t5 = m.load_t5();
    if (dit_ids.size() > 1 && !load_dit_stages(self, s, dit_ids, dtype, m.t5->config(), m)) return false;
    if (s.offload) {
      m.t5.reset();
      la::runtime::release_cached_device_memory(device);  // its memory to the device, not LibTorch's cache
    }
    what = "the umT5 tokenizer";
    m.tokenizer = std::make_shared<const la::models::Umt5Tokenizer>((dir / "google" / "umt5-xxl").string(),
                                                                    m.dit->config().text_len);
    std::lock_guard<std::mutex> g(st->lock);
    st->models = std::move(m);
  } catch (const std::exception& e) {
    if (s.fp8 && std::string(e.what()).rfind("fp8 matmul", 0) == 0) return fp8_error(e.what());
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("cannot load %s from '%s': %s", what.c_str(), s.checkpoint_dir.c_str(),
                                             e.what()),
                      ("checkpoint-dir must be the Wan2.2-S2V-14B directory; lora the liveavatar.safetensors"));
    return false;
  }
  la::video::Size out{};
  try {
    out = la::video::output_size_for_area(st->image_rgb.size(0), st->image_rgb.size(1), area);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("size '%s': %s", s.size.c_str(), e.what()), (nullptr));
    return false;
  }
  {
    std::lock_guard<std::mutex> g(st->lock);
    st->width = static_cast<int>(out.width);
    st->height = static_cast<int>(out.height);
  }
  GST_INFO_OBJECT(self, "DiT %s (lora %s) on %s (%s), output %dx%d", s.checkpoint_dir.c_str(),
                  s.lora.empty() ? "none" : s.lora.c_str(), device.str().c_str(), c10::toString(dtype), st->width,
                  st->height);
  if (s.lora.empty())  // allowed (the base model runs), but rarely meant: a visible warning
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("lora is not set: running the base Wan2.2-S2V DiT without the LiveAvatar LoRA, which the "
                         "4-step sampler is distilled for; set lora to LiveAvatar/liveavatar.safetensors"),
                        (nullptr));
  if (dit_ids.size() <= 1 && s.dit_split != la::parallel::DitSplit::kAuto)  // set, but it splits nothing
    GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS,
                        ("dit-split=%s has no effect with one DiT device: it splits the DiT over the devices "
                         "dit-devices lists",
                         la::parallel::dit_split_name(s.dit_split)),
                        ("dit-devices='%s'", s.dit_devices.c_str()));
  return true;
}

// READY->PAUSED: creates the stream's generator, encodes the prompt and the image.
bool start_stream(GstLaStageElement* element) {
  auto* self = LA_GEN(element);
  State* st = self->st;
  Settings s;
  {
    std::lock_guard<std::mutex> g(st->lock);
    s = st->settings;
    st->pending_prompt.reset();
    st->pending_image.reset();
    st->started = true;
  }
  auto fail = [st] {  // nothing of this stream stays: the generator holds the models too
    st->generator.reset();
    std::lock_guard<std::mutex> g(st->lock);
    st->started = false;
    return false;
  };
  // An image set while READY: the output size stays the one of NULL->READY.
  if (s.image != st->image_file) {
    try {
      st->image_rgb = la::gst::load_image_rgb(s.image);
      st->image_file = s.image;
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, RESOURCE, READ, ("%s", e.what()), ("the image property names the reference picture"));
      return fail();
    }
  }
  la::session::SessionOptions o;
  o.seed = s.seed;
  o.steps = s.steps;
  const la::gst::StageScope on_stage(st->stage);  // the encodings run on the stage's stream, as the blocks
  try {
    st->generator = std::make_unique<la::elements::AvatarGenerator>(
        st->models, la::video::Size{st->height, st->width}, o, s.dit_handover);
    st->generator->set_prompt(s.prompt);
    st->generator->set_image(st->image_rgb);
    std::lock_guard<std::mutex> g(st->lock);
    st->prompt_in_use = s.prompt;
  } catch (const std::exception& e) {
    // NCCL between the DiT's GPUs fails where it cannot set up its transport (a container's
    // small /dev/shm on GPUs without peer access, say): the way around it is a property away.
    const bool nccl = std::string(e.what()).find("NCCL") != std::string::npos;
    GST_ELEMENT_ERROR(self, LIBRARY, INIT, ("cannot start generation: %s", e.what()),
                      ("%s", nccl ? "dit-handover=copy passes the DiT's tensors between GPUs with device-to-device "
                                    "copies instead of NCCL"
                                  : ""));
    return fail();
  }
  st->blocks_out = 0;
  st->change_cost_a_block = false;
  st->discont = true;
  st->in_flight.clear();
  // Several devices: a block comes out when depth - 1 more have gone in.
  st->latency.set_buffering(static_cast<GstClockTime>(st->generator->depth() - 1) * kBlockDuration);
  if (st->generator->depth() > 1)
    GST_INFO_OBJECT(self, "DiT pipeline of %" G_GINT64_FORMAT " stages, %" G_GINT64_FORMAT " NCCL links between GPUs",
                    st->generator->depth(), st->generator->nccl_links());
  return true;
}

// PAUSED->READY, the streaming thread stopped.
void stop_stream(GstLaStageElement* element) {
  State* st = LA_GEN(element)->st;
  {
    std::lock_guard<std::mutex> g(st->lock);
    st->started = false;  // later changes wait in the settings for the next start_stream()
    st->pending_prompt.reset();
    st->pending_image.reset();
  }
  st->generator.reset();
  st->have_caps = false;
  st->refused_caps.reset();
}

// READY->NULL, and after a failed NULL->READY: what load_models() got.
void release_models(GstLaStageElement* element) {
  State* st = LA_GEN(element)->st;
  std::lock_guard<std::mutex> g(st->lock);
  st->models = {};
  st->image_rgb.reset();
  st->image_file.clear();
  st->width = st->height = 0;
}

bool has_pending_changes(State* st) {
  std::lock_guard<std::mutex> g(st->lock);
  return st->pending_prompt.has_value() || st->pending_image.has_value();
}

// After a change that could not be applied: the property reads back `in_use` again (notified),
// unless a newer value is already pending.
void keep_in_use(GstLiveAvatarGen* self, std::string Settings::*field, std::optional<std::string> State::*pending,
                 const std::string& in_use, const char* property) {
  {
    std::lock_guard<std::mutex> g(self->st->lock);
    if ((self->st->*pending).has_value()) return;
    self->st->settings.*field = in_use;
  }
  g_object_notify(G_OBJECT(self), property);
}

// prompt= / image= set while running (the latest of each, however many came since the last
// block): encoded now, for the block at `pts`. Returns whether anything was applied. A change
// that cannot be applied (an image file that is missing or does not decode) is a warning: a
// live stream goes on with what it had, and the property reads back the value in use.
bool apply_changes(GstLiveAvatarGen* self, GstClockTime pts) {
  State* st = self->st;
  std::optional<std::string> prompt, image;
  {
    std::lock_guard<std::mutex> g(st->lock);
    prompt.swap(st->pending_prompt);
    image.swap(st->pending_image);
  }
  if (prompt) {
    GST_INFO_OBJECT(self, "new prompt for the block at %" GST_TIME_FORMAT ": %s", GST_TIME_ARGS(pts),
                    prompt->c_str());
    try {
      st->generator->set_prompt(*prompt);
      std::lock_guard<std::mutex> g(st->lock);
      st->prompt_in_use = *prompt;
    } catch (const std::exception& e) {
      // The property reads back the value in use before the warning tells of it.
      std::string in_use;
      {
        std::lock_guard<std::mutex> g(st->lock);
        in_use = st->prompt_in_use;
      }
      keep_in_use(self, &Settings::prompt, &State::pending_prompt, in_use, "prompt");
      GST_ELEMENT_WARNING(self, RESOURCE, READ, ("cannot apply the new prompt: %s; the previous one stays", e.what()),
                          (nullptr));
    }
  }
  if (image) {
    GST_INFO_OBJECT(self, "new image for the block at %" GST_TIME_FORMAT ": %s", GST_TIME_ARGS(pts),
                    image->c_str());
    try {
      // Resized/cropped to the running size by set_image: the caps never change.
      at::Tensor rgb = la::gst::load_image_rgb(*image);
      st->generator->set_image(rgb);
      st->image_rgb = rgb;
      st->image_file = *image;
    } catch (const std::exception& e) {
      keep_in_use(self, &Settings::image, &State::pending_image, st->image_file, "image");
      GST_ELEMENT_WARNING(self, RESOURCE, READ, ("cannot apply the new image: %s; the previous picture stays",
                                                 e.what()),
                          ("the image property reads back '%s', the picture in use", st->image_file.c_str()));
    }
  }
  return prompt || image;
}

bool set_sink_caps(GstLiveAvatarGen* self, GstCaps* caps) {
  State* st = self->st;
  la::gst::FeaturesShape f;
  std::string why;
  if (la::gst::parse_features_caps(caps, &f, &why)) {
    const auto& cfg = st->models.dit->config();
    if (f.layers != la::models::kAudioHiddenStates || f.channels != cfg.audio_dim || f.frames != 12)
      why = "the DiT expects layers=" + std::to_string(la::models::kAudioHiddenStates) +
            ", channels=" + std::to_string(cfg.audio_dim) + ", frames=12 but upstream sends layers=" +
            std::to_string(f.layers) + ", channels=" + std::to_string(f.channels) + ", frames=" +
            std::to_string(f.frames) + " (is laaudiofeat's wav2vec2 the one of this checkpoint?)";
  }
  if (!why.empty()) {
    if (st->refused_caps.first_refusal(caps))
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("features caps do not fit liveavatargen: %s", why.c_str()),
                        ("caps %" GST_PTR_FORMAT, caps));
    return false;
  }
  st->refused_caps.reset();
  st->features = f;
  st->have_caps = true;
  GstCaps* out = la::gst::pick_caps_with_peer(
      self->parent.srcpad, la::gst::offer_with_tensor_memory(la::gst::latent_caps(output_shape(st)), st->device.is_cuda()));
  if (!out) {
    const la::gst::LatentShape shape = output_shape(st);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("downstream takes no %s caps of %dx%d latents (%s)",
                                                la::gst::kLatentMediaType, shape.width, shape.height,
                                                la::gst::caps_dtype_name(shape.dtype)),
                      ("is the decoder's VAE the one of this checkpoint?"));
    return false;
  }
  st->tensor_memory_out = la::gst::has_tensor_memory_feature(out);
  const bool ok = gst_pad_push_event(self->parent.srcpad, gst_event_new_caps(out));
  gst_caps_unref(out);
  return ok;
}

// Once per stream, in a live pipeline: a warning when generation runs slower than real time (three
// slow blocks in a row, or any slowness once blocks are being skipped).
void warn_if_slow(GstLiveAvatarGen* self) {
  State* st = self->st;
  if (!st->latency.live()) return;
  int steps;
  {
    std::lock_guard<std::mutex> g(st->lock);
    steps = st->settings.steps;
  }
  const std::string doing = "generation (" + std::to_string(st->width) + "x" + std::to_string(st->height) + ", " +
                            std::to_string(steps) + " steps on " + st->device.str() + ")";
  st->latency.warn_if_behind(GST_ELEMENT(self), doing.c_str(),
                             "a smaller size, fewer steps, fp8, or a (faster) GPU with cuda-device-id",
                             st->late.skipped() > 0);
}

// After each generated block: a LATENCY message when the measured processing time grew (live
// sinks re-configure), and the slowness warning.
void note_block_time(GstLiveAvatarGen* self, double seconds, GstClockTime duration) {
  State* st = self->st;
  if (st->latency.record(seconds, duration)) {
    GST_INFO_OBJECT(self, "a block now takes up to %" GST_TIME_FORMAT ": latency re-posted",
                    GST_TIME_ARGS(st->latency.latency()));
    gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
  }
  warn_if_slow(self);
}

// The progress message after each block, generated (`seconds` of work) or
// skipped (0).
void post_block_progress(GstLiveAvatarGen* self, GstClockTime pts, double seconds) {
  State* st = self->st;
  la::gst::Progress p;
  p.blocks = st->blocks_out;
  p.frames = 12 * st->blocks_out;
  p.block_pts = pts;
  p.block_seconds = seconds;
  p.fps = seconds > 0 ? 12.0 / seconds : 0;
  const la::gst::MemoryUsage m = la::gst::memory_usage(st->device);
  p.rss_bytes = m.rss_bytes;
  p.device_bytes = m.device_bytes;
  p.skipped_blocks = st->late.skipped();
  la::gst::post_progress(GST_ELEMENT(self), GST_CAT_DEFAULT, p);
}

GstFlowReturn drain(GstLiveAvatarGen* self);

// skip-late: a live block that would reach the sinks after its time is not
// generated; a GAP event takes its place (lavaedecode repeats its last frame
// for it) and the session goes on from the last block it generated. Takes the
// buffer when it skips.
bool skip_late_block(GstLiveAvatarGen* self, GstBuffer* buffer) {
  State* st = self->st;
  {
    std::lock_guard<std::mutex> g(st->lock);
    if (!st->settings.skip_late) return false;
  }
  const GstClockTime pts = GST_BUFFER_PTS(buffer);
  const GstClockTime duration = GST_BUFFER_DURATION_IS_VALID(buffer) ? GST_BUFFER_DURATION(buffer) : kBlockDuration;
  if (!st->late.should_skip(GST_ELEMENT(self), st->segment, pts, duration, st->latency)) return false;
  gst_buffer_unref(buffer);
  if (st->late.skipped() == 1)
    GST_ELEMENT_WARNING(self, STREAM, FAILED,
                        ("the video is late: skipping blocks to keep the live pipeline on time"),
                        ("the block at %" GST_TIME_FORMAT " would reach the sinks %.2f s after its time; skipped "
                         "blocks show the last frame (skip-late=false generates every block and lets the video fall "
                         "behind instead)",
                         GST_TIME_ARGS(pts), static_cast<double>(st->late.last_lateness()) / GST_SECOND));
  // Here too, not only after generated blocks: when the blocks generated before the skipping
  // were all the stream had, no block after it would say why the video shows fewer blocks.
  warn_if_slow(self);
  drain(self);  // the blocks before it go first
  post_block_progress(self, pts, 0);
  gst_pad_push_event(self->parent.srcpad, gst_event_new_gap(pts, duration));
  return true;
}

GstFlowReturn push_latents(GstLiveAvatarGen* self, at::Tensor latents, std::chrono::steady_clock::time_point since,
                           bool timed);

// The oldest block from the generator: waiting for it, or (`wait` false) only if it is finished
// (else undefined). False after posting the error when generation failed.
bool take_oldest(GstLiveAvatarGen* self, bool wait, at::Tensor* latents) {
  State* st = self->st;
  try {
    *latents = wait ? st->generator->take() : st->generator->try_take();
  } catch (const std::exception& e) {
    st->in_flight.clear();
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("generation failed: %s", e.what()), (nullptr));
    return false;
  }
  return true;
}

// Takes the oldest block from the generator (waiting for it) and pushes it.
// `since`: when this thread started working for it (its processing time).
GstFlowReturn push_oldest(GstLiveAvatarGen* self, std::chrono::steady_clock::time_point since) {
  at::Tensor latents;
  if (!take_oldest(self, true, &latents)) return GST_FLOW_ERROR;
  return push_latents(self, std::move(latents), since, true);
}

// Several devices: pushes the blocks the stages have already finished, without waiting. Before
// a change is encoded on this thread (0.8 s for an image here), so that they do not wait behind
// it and reach the sinks late: they would otherwise go out only after the next block went in
// (with dit-devices=cpu,cpu and a change every 0.2 s, a syncing sink dropped 70-84 late frames
// where one stage dropped 6-13). Their time is not a measurement of a block's work.
GstFlowReturn push_finished(GstLiveAvatarGen* self) {
  State* st = self->st;
  GstFlowReturn ret = GST_FLOW_OK;
  while (ret == GST_FLOW_OK && st->generator->depth() > 1 && st->generator->pending() > 0) {
    at::Tensor latents;
    if (!take_oldest(self, false, &latents)) return GST_FLOW_ERROR;
    if (!latents.defined()) break;
    ret = push_latents(self, std::move(latents), std::chrono::steady_clock::now(), false);
  }
  return ret;
}

// Pushes the oldest block in flight, `latents`. `timed`: the time since `since` is the block's
// processing time (recorded for the latency); otherwise the block was finished before this
// thread asked, and its progress message gives the time since the block before it went out.
GstFlowReturn push_latents(GstLiveAvatarGen* self, at::Tensor latents, std::chrono::steady_clock::time_point since,
                           bool timed) {
  State* st = self->st;
  const InFlight block = st->in_flight.front();
  st->in_flight.pop_front();
  st->stage.synchronize();  // one device: the block's kernels were only queued on the stage's stream
  const auto now = std::chrono::steady_clock::now();
  const auto from = timed || st->last_push == std::chrono::steady_clock::time_point() ? since : st->last_push;
  const double seconds = std::chrono::duration<double>(now - from).count();
  st->last_push = now;
  // Tensor memory: the block stays on the DiT's device (zero-copy on a GPU).
  // System memory: it comes to the host.
  GstBuffer* out = la::gst::buffer_new_from_tensor(st->tensor_memory_out ? latents : latents.cpu());
  GST_BUFFER_PTS(out) = block.pts;
  GST_BUFFER_DURATION(out) = block.duration;
  GST_BUFFER_OFFSET(out) = st->blocks_out;
  GST_BUFFER_OFFSET_END(out) = st->blocks_out + 1;
  if (st->discont || block.discont) GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
  st->discont = false;
  ++st->blocks_out;
  if (timed) note_block_time(self, seconds, block.duration);
  post_block_progress(self, block.pts, seconds);
  return gst_pad_push(self->parent.srcpad, out);
}

// Pushes every block still in the generator, before a serialized event
// (EOS, GAP, SEGMENT, ...) that must follow them.
GstFlowReturn drain(GstLiveAvatarGen* self) {
  State* st = self->st;
  GstFlowReturn ret = GST_FLOW_OK;
  while (ret == GST_FLOW_OK && st->generator && st->generator->pending() > 0)
    ret = push_oldest(self, std::chrono::steady_clock::now());
  return ret;
}

GstFlowReturn chain(GstPad*, GstObject* parent, GstBuffer* buffer) {
  auto* self = LA_GEN(parent);
  State* st = self->st;
  const la::gst::StageScope on_stage(st->stage);
  if (!st->have_caps) {
    gst_buffer_unref(buffer);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("features arrived before caps"), (nullptr));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  // A late block is skipped before anything is spent on it: pending prompt and image changes
  // wait for the next block that is generated (each costs an encode: a picture's VAE encode and
  // sink refill took 0.8 s at 64x64 on a 2-core CPU; applied before every skipped block, changes
  // every 0.2 s kept a live stream skipping, further behind with each). After a change the block
  // is checked again: the encode may have made it late, and a skipped block (its last frame
  // repeated) beats frames that come after their time, which syncing sinks drop. The block after
  // such a skip is generated with that change before a newer one is encoded: otherwise changes
  // coming faster than the hardware encodes them would skip every block, and none would show.
  if (skip_late_block(self, buffer)) return GST_FLOW_OK;
  if (!st->change_cost_a_block) {
    if (has_pending_changes(st)) {
      const GstFlowReturn ret = push_finished(self);
      if (ret != GST_FLOW_OK) {
        gst_buffer_unref(buffer);
        return ret;
      }
    }
    if (apply_changes(self, GST_BUFFER_PTS(buffer)) && skip_late_block(self, buffer)) {
      GST_INFO_OBJECT(self, "the block is late after the changes before it: skipped");
      st->change_cost_a_block = true;
      return GST_FLOW_OK;
    }
  }
  st->change_cost_a_block = false;
  const auto t0 = std::chrono::steady_clock::now();
  at::Tensor features;
  try {
    features = la::gst::buffer_to_tensor(buffer, st->features.sizes(), at::kFloat);
  } catch (const std::exception& e) {
    gst_buffer_unref(buffer);
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("features buffer does not fit: %s", e.what()), (nullptr));
    return GST_FLOW_ERROR;
  }
  // Past the buffer check, anything thrown is the generator's own failure,
  // not the input's (an std::invalid_argument included).
  st->in_flight.push_back({GST_BUFFER_PTS(buffer),
                           GST_BUFFER_DURATION_IS_VALID(buffer) ? GST_BUFFER_DURATION(buffer) : kBlockDuration,
                           GST_BUFFER_IS_DISCONT(buffer)});
  gst_buffer_unref(buffer);
  try {
    st->generator->submit(features);
  } catch (const std::exception& e) {
    st->in_flight.pop_back();
    GST_ELEMENT_ERROR(self, STREAM, FAILED, ("generation failed: %s", e.what()), (nullptr));
    return GST_FLOW_ERROR;
  }
  features.reset();  // lets go of the input buffer's mapping
  // One device: the block is done. Several: the oldest comes out once the
  // pipeline is full, so its stages keep computing while this thread waits.
  GstFlowReturn ret = GST_FLOW_OK;
  while (ret == GST_FLOW_OK && st->generator->pending() >= st->generator->depth()) ret = push_oldest(self, t0);
  return ret;
}

void new_stream(State* st) {
  if (st->generator && (st->blocks_out > 0 || st->generator->pending() > 0)) st->generator->reset();
  st->change_cost_a_block = false;
  st->in_flight.clear();
  st->blocks_out = 0;
  st->discont = true;
  st->latency.restart();
  st->late.restart();
}

gboolean sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  auto* self = LA_GEN(parent);
  const la::gst::StageScope on_stage(self->st->stage);  // a new stream resets the session's tensors
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps* caps;
      gst_event_parse_caps(event, &caps);
      const bool ok = set_sink_caps(self, caps);
      gst_event_unref(event);
      return ok;
    }
    case GST_EVENT_SEGMENT:  // after data: another stream
      drain(self);  // the old stream's last blocks
      gst_event_copy_segment(event, &self->st->segment);
      new_stream(self->st);
      return gst_pad_event_default(pad, parent, event);
    case GST_EVENT_FLUSH_STOP:
      gst_segment_init(&self->st->segment, GST_FORMAT_UNDEFINED);
      new_stream(self->st);
      return gst_pad_event_default(pad, parent, event);
    default:
      // EOS, GAP and the other serialized events follow the blocks before them.
      if (GST_EVENT_IS_SERIALIZED(event) && GST_EVENT_TYPE(event) != GST_EVENT_FLUSH_STOP) drain(self);
      return gst_pad_event_default(pad, parent, event);
  }
}

gboolean sink_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  if (GST_QUERY_TYPE(query) == GST_QUERY_ACCEPT_CAPS)
    return la::gst::accept_fixed_caps_of(query, la::gst::kFeaturesMediaType);
  if (GST_QUERY_TYPE(query) == GST_QUERY_CAPS)
    return la::gst::answer_caps_query_any_fields(query, la::gst::kFeaturesMediaType);
  return gst_pad_query_default(pad, parent, query);
}

gboolean src_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  auto* self = LA_GEN(parent);
  State* st = self->st;
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_LATENCY:
      if (!gst_pad_peer_query(self->parent.sinkpad, query)) return FALSE;
      // Each block comes out its processing time after its features came in.
      st->latency.answer(query);
      return TRUE;
    case GST_QUERY_CAPS: {
      GstCaps* caps;
      {
        std::lock_guard<std::mutex> g(st->lock);  // queries come from any thread
        caps = st->models.dit && st->width ? la::gst::offer_with_tensor_memory(la::gst::latent_caps(output_shape(st)),
                                                                              st->device.is_cuda())
                                           : gst_pad_get_pad_template_caps(pad);
      }
      return la::gst::answer_caps_query(query, caps);
    }
    default:
      return gst_pad_query_default(pad, parent, query);
  }
}

}  // namespace

static void gst_la_gen_set_property(GObject* object, guint id, const GValue* value, GParamSpec* pspec) {
  la::gst::warn_if_set_while_running(GST_ELEMENT(object), pspec, value);
  State* st = LA_GEN(object)->st;
  std::lock_guard<std::mutex> g(st->lock);
  Settings& s = st->settings;
  auto str = [&] {
    const char* v = g_value_get_string(value);
    return std::string(v ? v : "");
  };
  switch (id) {
    case PROP_CHECKPOINT_DIR: s.checkpoint_dir = str(); break;
    case PROP_LORA: s.lora = str(); break;
    case PROP_IMAGE:
      s.image = str();
      if (st->started) st->pending_image = s.image;
      break;
    case PROP_PROMPT:
      s.prompt = str();
      if (st->started) st->pending_prompt = s.prompt;
      break;
    case PROP_SIZE: s.size = str().empty() ? kDefaultSize : str(); break;
    case PROP_SEED: s.seed = g_value_get_uint64(value); break;
    case PROP_STEPS: s.steps = g_value_get_int(value); break;
    case PROP_CUDA_DEVICE_ID: s.cuda_device_id = g_value_get_int(value); break;
    case PROP_FP8: s.fp8 = g_value_get_boolean(value); break;
    case PROP_OFFLOAD: s.offload = g_value_get_boolean(value); break;
    case PROP_SKIP_LATE: s.skip_late = g_value_get_boolean(value); break;
    case PROP_DIT_DEVICES: s.dit_devices = str(); break;
    case PROP_DIT_SPLIT: s.dit_split = static_cast<la::parallel::DitSplit>(g_value_get_enum(value)); break;
    case PROP_DIT_HANDOVER: s.dit_handover = static_cast<la::parallel::GpuHandover>(g_value_get_enum(value)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
  }
}

static void gst_la_gen_get_property(GObject* object, guint id, GValue* value, GParamSpec* pspec) {
  State* st = LA_GEN(object)->st;
  std::lock_guard<std::mutex> g(st->lock);
  const Settings& s = st->settings;
  auto set_str = [&](const std::string& v) { g_value_set_string(value, v.empty() ? nullptr : v.c_str()); };
  switch (id) {
    case PROP_CHECKPOINT_DIR: set_str(s.checkpoint_dir); break;
    case PROP_LORA: set_str(s.lora); break;
    case PROP_IMAGE: set_str(s.image); break;
    case PROP_PROMPT: g_value_set_string(value, s.prompt.c_str()); break;
    case PROP_SIZE: set_str(s.size); break;
    case PROP_WIDTH: g_value_set_int(value, st->width); break;
    case PROP_HEIGHT: g_value_set_int(value, st->height); break;
    case PROP_SEED: g_value_set_uint64(value, s.seed); break;
    case PROP_STEPS: g_value_set_int(value, s.steps); break;
    case PROP_CUDA_DEVICE_ID: g_value_set_int(value, s.cuda_device_id); break;
    case PROP_FP8: g_value_set_boolean(value, s.fp8); break;
    case PROP_OFFLOAD: g_value_set_boolean(value, s.offload); break;
    case PROP_SKIP_LATE: g_value_set_boolean(value, s.skip_late); break;
    case PROP_DIT_DEVICES: set_str(s.dit_devices); break;
    case PROP_DIT_SPLIT: g_value_set_enum(value, static_cast<gint>(s.dit_split)); break;
    case PROP_DIT_HANDOVER: g_value_set_enum(value, static_cast<gint>(s.dit_handover)); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
  }
}

static void gst_la_gen_finalize(GObject* object) {
  delete LA_GEN(object)->st;
  G_OBJECT_CLASS(gst_la_gen_parent_class)->finalize(object);
}

static void gst_la_gen_class_init(GstLiveAvatarGenClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_la_gen_set_property;
  gobject_class->get_property = gst_la_gen_get_property;
  gobject_class->finalize = gst_la_gen_finalize;
  GstLaStageElementClass* stage_class = GST_LA_STAGE_ELEMENT_CLASS(klass);
  stage_class->open = load_models;
  stage_class->start = start_stream;
  stage_class->stop = stop_stream;
  stage_class->close = release_models;

  // Read when the element starts: changeable only in NULL or READY (a change while running
  // posts a warning, gst/property_state.h). `live` ones apply at the next block.
  const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const auto live = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING);
  const auto ro = static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(
      gobject_class, PROP_CHECKPOINT_DIR,
      g_param_spec_string("checkpoint-dir", "Checkpoint directory",
                          "The Wan2.2-S2V-14B directory as downloaded (config.json + sharded DiT, Wan2.1_VAE.pth, "
                          "models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl/). Loaded at NULL->READY and shared "
                          "with other elements using the same files",
                          nullptr, rw));
  g_object_class_install_property(
      gobject_class, PROP_LORA,
      g_param_spec_string("lora", "LiveAvatar LoRA",
                          "liveavatar.safetensors, merged into the DiT at load (W += alpha/rank B A); every tensor "
                          "must match the DiT. Unset: the base Wan2.2-S2V model",
                          nullptr, rw));
  g_object_class_install_property(
      gobject_class, PROP_IMAGE,
      g_param_spec_string("image", "Reference image",
                          "Picture of the avatar (any format decodebin reads). Sets the output aspect ratio at "
                          "NULL->READY; changing it while PLAYING applies from the next block at the running size",
                          nullptr, live));
  g_object_class_install_property(
      gobject_class, PROP_PROMPT,
      g_param_spec_string("prompt", "Prompt",
                          "Text describing the scene, encoded by umT5; changing it while PLAYING applies from the "
                          "next block",
                          "", live));
  g_object_class_install_property(
      gobject_class, PROP_SIZE,
      g_param_spec_string("size", "Output area",
                          "Output area as W*H, e.g. 720*400; the output's sides are multiples of 64 in the image's "
                          "aspect ratio, the largest that fit the area (720*400 gives 704x384 for a 16:9 image)",
                          kDefaultSize, rw));
  g_object_class_install_property(
      gobject_class, PROP_WIDTH,
      g_param_spec_int("width", "Width", "Output width in pixels, known from NULL->READY on (0 before)", 0, G_MAXINT,
                       0, ro));
  g_object_class_install_property(
      gobject_class, PROP_HEIGHT,
      g_param_spec_int("height", "Height", "Output height in pixels, known from NULL->READY on (0 before)", 0,
                       G_MAXINT, 0, ro));
  g_object_class_install_property(
      gobject_class, PROP_SEED,
      g_param_spec_uint64("seed", "Seed",
                          "Noise seed: clip r uses seed + r, the rolling-sink offsets come from a generator seeded "
                          "with it; the same seed and inputs give the same latents",
                          0, G_MAXUINT64, 42, rw));
  g_object_class_install_property(
      gobject_class, PROP_STEPS,
      g_param_spec_int("steps", "Denoising steps",
                       "Flow-matching Euler steps per block; the LiveAvatar LoRA is distilled for 4. Each step keeps "
                       "its own KV cache",
                       1, 1000, 4, rw));
  g_object_class_install_property(
      gobject_class, PROP_CUDA_DEVICE_ID,
      g_param_spec_int("cuda-device-id", "CUDA device id",
                       "CUDA device to run on (bf16), -1 for the CPU (fp32); a device that does not exist fails the "
                       "NULL->READY change",
                       -1, 1023, -1, rw));

  g_object_class_install_property(
      gobject_class, PROP_DIT_DEVICES,
      g_param_spec_string("dit-devices", "DiT devices",
                          "The DiT's devices for one stream, comma-separated CUDA ordinals or cpu (e.g. 0,1,2,3; "
                          "cpu,cpu for tests); the first also runs the text and image encoders. Empty: "
                          "cuda-device-id alone. A layout that does not fit fails NULL->READY with what would "
                          "(docs/several-devices.md)",
                          nullptr, rw));
  g_object_class_install_property(
      gobject_class, PROP_DIT_SPLIT,
      g_param_spec_enum("dit-split", "DiT split",
                        "How dit-devices share the DiT: steps (each holds the whole DiT and runs a share of the "
                        "denoising steps), layers (each holds a share of the blocks for every step: 1/N of the "
                        "weights and caches), auto (steps when a whole DiT and its caches fit every device)",
                        GST_TYPE_LA_DIT_SPLIT, static_cast<gint>(la::parallel::DitSplit::kAuto), rw));
  g_object_class_install_property(
      gobject_class, PROP_DIT_HANDOVER,
      g_param_spec_enum("dit-handover", "DiT hand-over",
                        "How the DiT's stages on different GPUs (dit-devices) pass activations and latents: nccl "
                        "(NCCL send/receive), copy (device-to-device copies, through the host without GPU peer "
                        "access: where NCCL cannot run). Stages on one GPU or the CPU pass them as they are either "
                        "way. Read at READY->PAUSED",
                        GST_TYPE_LA_DIT_HANDOVER, static_cast<gint>(la::parallel::GpuHandover::kNccl), rw));
  g_object_class_install_property(
      gobject_class, PROP_FP8,
      g_param_spec_boolean("fp8", "fp8 linears",
                           "Run the DiT's 460 large linears in fp8 (e4m3, per-tensor scales, _scaled_mm) as the "
                           "reference's --fp8: half the weight memory, about 2% relative difference from bf16. "
                           "Needs fp8 matmul support (Hopper/Ada GPUs, or the CPU)",
                           FALSE, rw));
  g_object_class_install_property(
      gobject_class, PROP_OFFLOAD,
      g_param_spec_boolean("offload", "Offload the text encoder",
                           "Release the umT5 text encoder (11 GB in bf16) after each prompt is encoded and load it "
                           "again for the next prompt change, instead of holding it while generating",
                           FALSE, rw));
  g_object_class_install_property(
      gobject_class, PROP_SKIP_LATE,
      g_param_spec_boolean("skip-late", "Skip late blocks",
                           "In a live pipeline, do not generate a block that would reach the sinks after its time "
                           "(generation slower than real time): lavaedecode shows the last frame for it, and the delay "
                           "stays bounded. FALSE: generate every block, and the video falls further behind the audio "
                           "with every block. Files (not live) always get every block",
                           TRUE, live));
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(element_class, "LiveAvatar generator", "Filter/Converter/Video",
                                        "Causal S2V DiT: audio feature blocks to latent video blocks [16,3,h,w] "
                                        "(Wan2.2-S2V-14B + LiveAvatar, 4-step, streaming)",
                                        "the gst-liveavatar developers");
  GST_DEBUG_CATEGORY_INIT(gst_la_gen_debug, "liveavatargen", 0, "LiveAvatar generator");
}

static void gst_la_gen_init(GstLiveAvatarGen* self) {
  self->st = new State(*self->parent.stage);
  gst_pad_set_chain_function(self->parent.sinkpad, chain);
  gst_pad_set_event_function(self->parent.sinkpad, sink_event);
  gst_pad_set_query_function(self->parent.sinkpad, sink_query);
  gst_pad_set_query_function(self->parent.srcpad, src_query);
}

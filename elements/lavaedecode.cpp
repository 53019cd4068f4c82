/* gst-launch-1.0 filesrc location=/dev/zero blocksize=811008 num-buffers=4 ! "application/x-liveavatar-latent,channels=16,frames=3,latent-height=48,latent-width=88,dtype=float32" ! lavaedecode checkpoint-dir=ckpt/Wan2.2-S2V-14B ! videoconvert ! jpegenc ! avimux ! filesink location=avatar.avi
 *
 * lavaedecode: latent blocks [16,3,h,w] -> 12 video frames each (8w x 8h,
 * 25 fps), the Wan 2.1 VAE's causal decoder with its feature cache kept from
 * block to block (engine/models/wan_vae). Normally fed by liveavatargen; the
 * line above decodes 4 blocks of zero latents (the latent mean: a flat
 * picture), 48 frames of 704x384. Reference: docs/elements.md.
 *
 * Frame i of a block with PTS t has PTS t + i/25 s; with the blocks of an
 * utterance at t0 + 0.48 b, frame n of the stream is at t0 + n/25 s. The
 * first block of a stream also gives 12 frames (elements/vae_decode_stream.h
 * says how and why this differs from the reference's 9).
 *
 * online=true (default) decodes each block as it arrives; online=false keeps
 * every latent until EOS (or a new segment) and decodes them then, as the
 * reference does by default; the frames are the same bit for bit. FLUSH, a new
 * segment and new caps start a new decoder stream. Blocks are never dropped
 * (QoS events are passed upstream and otherwise ignored): the causal cache
 * needs every block in order. A "liveavatar-progress" element message and an
 * INFO log line report each block.
 */
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudautils.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <ATen/ATen.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "elements/vae_decode_stream.h"
#include "gst/cuda_context.h"
#include "gst/cuda_frame_pool.h"
#include "gst/device.h"
#include "gst/element_registration.h"
#include "gst/media_types.h"
#include "gst/memory_usage.h"
#include "gst/model_cache.h"
#include "gst/pad_queries.h"
#include "gst/property_state.h"
#include "gst/refused_caps.h"
#include "gst/block_latency.h"
#include "gst/progress.h"
#include "gst/stage_device.h"
#include "gst/stage_element.h"
#include "gst/tensor_memory.h"

GST_DEBUG_CATEGORY_STATIC(gst_la_vae_decode_debug);
#define GST_CAT_DEFAULT gst_la_vae_decode_debug

namespace {

constexpr GstClockTime kFrameDuration = GST_SECOND / 25;
constexpr GstClockTime kBlockDuration = 12 * kFrameDuration;
constexpr const char* kVaeFileName = "Wan2.1_VAE.pth";
constexpr const char* kFormats[] = {"RGBA", "RGB", "I420", "NV12"};

enum { PROP_0, PROP_CHECKPOINT_DIR, PROP_VAE, PROP_CUDA_DEVICE_ID, PROP_ONLINE };

struct Settings {
  std::string checkpoint_dir, vae_path;
  int cuda_device_id = -1;
  bool online = true;
};

// The element's C++ members.
struct State {
  explicit State(la::gst::StageDevice& stage_device) : stage(stage_device) {}
  std::mutex lock;  // guards settings, vae and the negotiated shape (queries come from any thread)
  Settings settings;
  std::shared_ptr<const la::models::WanVae> vae;  // NULL->READY .. READY->NULL
  c10::Device device{c10::kCPU};
  la::gst::StageDevice& stage;  // the device and this stage's CUDA stream (the base class's)
  std::string vae_path;
  bool have_shape = false;
  la::gst::LatentShape shape;
  la::gst::RefusedCaps refused_caps;  // posted once each
  // On CUDA: the device's wrapped primary context, for memory:CUDAMemory
  // output and GstContext sharing; null on the CPU or when GStreamer's CUDA
  // library cannot load the driver (then system memory only).
  GstCudaContext* cuda_context = nullptr;

  // From READY->PAUSED on, the streaming thread's (and state changes'); the
  // atomics are also read by LATENCY queries from any thread.
  std::atomic<bool> online{true};
  std::unique_ptr<la::elements::VaeDecodeStream> stream;  // after caps
  std::unique_ptr<la::gst::CudaFramePool> cuda_frames;    // memory:CUDAMemory negotiated
  GstSegment segment;
  GstClockTime t0 = GST_CLOCK_TIME_NONE;  // PTS of the stream's first block
  uint64_t frames_out = 0, blocks_out = 0;
  uint64_t gap_blocks = 0;  // GAPs filled with the last frame
  at::Tensor last_frame;    // the last frame pushed [frame_bytes], in the negotiated format
  bool discont = true;
  std::atomic<bool> warned_not_live{false};
  la::gst::BlockLatency block_latency;  // measured decoding time per block: the LATENCY answer
};

}  // namespace

struct GstLaVaeDecode {
  GstLaStageElement parent;  // the pads, the stage's device, the state changes (gst/stage_element.h)
  State* st;
};
struct GstLaVaeDecodeClass {
  GstLaStageElementClass parent_class;
};

G_DEFINE_TYPE(GstLaVaeDecode, gst_la_vae_decode, GST_TYPE_LA_STAGE_ELEMENT)
GST_ELEMENT_REGISTER_DEFINE(lavaedecode, "lavaedecode", GST_RANK_NONE, gst_la_vae_decode_get_type())

#define LA_VAE_DECODE(obj) (reinterpret_cast<GstLaVaeDecode*>(obj))

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(LA_LATENT_CAPS_TEMPLATE));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(LA_VIDEO_CAPS_TEMPLATE));

namespace {

// Every format we make, at the size of `shape`, in our order of preference:
// GstCudaMemory first when we decode on a GPU, then system memory.
GstCaps* output_caps(const la::gst::LatentShape& shape, bool cuda_memory) {
  GValue formats = G_VALUE_INIT, format = G_VALUE_INIT;
  gst_value_list_init(&formats, G_N_ELEMENTS(kFormats));
  g_value_init(&format, G_TYPE_STRING);
  for (const char* f : kFormats) {
    g_value_set_static_string(&format, f);
    gst_value_list_append_value(&formats, &format);
  }
  GstCaps* caps = gst_caps_new_simple("video/x-raw", "width", G_TYPE_INT, 8 * shape.width, "height", G_TYPE_INT,
                                      8 * shape.height, "framerate", GST_TYPE_FRACTION, 25, 1, "pixel-aspect-ratio",
                                      GST_TYPE_FRACTION, 1, 1, nullptr);
  gst_caps_set_value(caps, "format", &formats);
  g_value_unset(&format);
  g_value_unset(&formats);
  if (!cuda_memory) return caps;
  GstCaps* on_gpu = gst_caps_copy(caps);
  gst_caps_set_features(on_gpu, 0, gst_caps_features_new(GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY, nullptr));
  return gst_caps_merge(on_gpu, caps);
}

void post_engine_error(GstLaVaeDecode* self, const std::exception& e) {
  GST_ELEMENT_ERROR(self, STREAM, DECODE, ("VAE decode failed: %s", e.what()),
                    ("VAE %s", self->st->vae_path.c_str()));
}

// A new stream (READY->PAUSED, a segment, a flush): from its first frame.
void restart_stream(State* st) {
  if (st->stream) st->stream->reset();
  st->t0 = GST_CLOCK_TIME_NONE;
  st->frames_out = st->blocks_out = st->gap_blocks = 0;
  st->discont = true;
  st->last_frame = at::Tensor();
  st->block_latency.restart();
}

// Pushes `pixels` [n, frame_bytes] as n frames from `pts` on, 25 fps, in one
// buffer list.
GstFlowReturn push_frames(GstLaVaeDecode* self, const at::Tensor& pixels, GstClockTime pts) {
  State* st = self->st;
  const int64_t frames = pixels.size(0);
  GstBufferList* list = gst_buffer_list_new_sized(static_cast<guint>(frames));
  if (st->cuda_frames) {
    // GstCudaMemory: each frame is copied on the device into a pool buffer.
    try {
      for (int64_t i = 0; i < frames; ++i) gst_buffer_list_add(list, st->cuda_frames->write(pixels[i]));
      st->cuda_frames->synchronize();
    } catch (const std::exception& e) {
      gst_buffer_list_unref(list);
      GST_ELEMENT_ERROR(self, RESOURCE, WRITE, ("cannot write frames into CUDA memory: %s", e.what()), (nullptr));
      return GST_FLOW_ERROR;
    }
  }
  for (int64_t i = 0; i < frames; ++i) {
    // System memory, zero-copy: each frame's memory holds a view of the
    // converted block. CUDA memory: the pool buffer written above.
    GstBuffer* frame = st->cuda_frames ? gst_buffer_list_get_writable(list, static_cast<guint>(i))
                                       : la::gst::buffer_new_from_tensor(pixels[i]);
    GST_BUFFER_PTS(frame) = pts + static_cast<GstClockTime>(i) * kFrameDuration;
    GST_BUFFER_DURATION(frame) = kFrameDuration;
    GST_BUFFER_OFFSET(frame) = st->frames_out;
    GST_BUFFER_OFFSET_END(frame) = st->frames_out + 1;
    if (st->discont) {
      GST_BUFFER_FLAG_SET(frame, GST_BUFFER_FLAG_DISCONT);
      st->discont = false;
    }
    ++st->frames_out;
    if (!st->cuda_frames) gst_buffer_list_add(list, frame);
  }
  st->last_frame = pixels[frames - 1];
  return gst_pad_push_list(self->parent.srcpad, list);
}

// The progress message after each block: decoded (`frames` in `seconds`) or
// a GAP filled (0 s).
void post_block_progress(GstLaVaeDecode* self, GstClockTime pts, int64_t frames, double seconds) {
  State* st = self->st;
  la::gst::Progress p;
  p.blocks = st->blocks_out;
  p.frames = st->frames_out;
  p.block_pts = pts;
  p.block_seconds = seconds;
  p.fps = seconds > 0 ? static_cast<double>(frames) / seconds : 0;
  const la::gst::MemoryUsage m = la::gst::memory_usage(st->device);
  p.rss_bytes = m.rss_bytes;
  p.device_bytes = m.device_bytes;
  p.skipped_blocks = st->gap_blocks;
  la::gst::post_progress(GST_ELEMENT(self), GST_CAT_DEFAULT, p);
}

// A GAP from upstream (liveavatargen skipped a late block; DESIGN §5): online,
// its time is filled with the last frame, so the video stays continuous at
// 25 fps. Before any frame (or offline) the GAP goes on downstream.
gboolean fill_gap(GstLaVaeDecode* self, GstEvent* event) {
  State* st = self->st;
  GstClockTime pts, duration;
  gst_event_parse_gap(event, &pts, &duration);
  if (!st->online || !st->last_frame.defined() || !GST_CLOCK_TIME_IS_VALID(pts))
    return gst_pad_push_event(self->parent.srcpad, event);
  gst_event_unref(event);
  const GstClockTime span = GST_CLOCK_TIME_IS_VALID(duration) ? duration : kBlockDuration;
  const int64_t frames = std::max<int64_t>(1, static_cast<int64_t>((span + kFrameDuration / 2) / kFrameDuration));
  ++st->gap_blocks;
  GST_DEBUG_OBJECT(self, "gap at %" GST_TIME_FORMAT ": %" G_GINT64_FORMAT " copies of the last frame",
                   GST_TIME_ARGS(pts), frames);
  const at::Tensor last = st->last_frame;
  const GstFlowReturn ret = push_frames(self, last.unsqueeze(0).expand({frames, last.size(0)}), pts);
  post_block_progress(self, pts, frames, 0);
  return ret == GST_FLOW_OK;
}

// Pushes each decoded block as 12 frames in one buffer list, then reports it.
GstFlowReturn push_decoded(GstLaVaeDecode* self, const std::vector<la::elements::DecodedBlock>& blocks,
                           double seconds) {
  State* st = self->st;
  for (const auto& block : blocks) {
    const int64_t frames = block.pixels.size(0);
    const GstFlowReturn ret = push_frames(self, block.pixels, block.pts);
    ++st->blocks_out;
    // Online: one block decoded per block in (offline decodes at EOS and
    // refuses live pipelines, so its times are not a latency).
    if (st->online && st->block_latency.record(seconds / static_cast<double>(blocks.size()), kBlockDuration)) {
      GST_INFO_OBJECT(self, "decoding a block now takes up to %" GST_TIME_FORMAT ": latency re-posted",
                      GST_TIME_ARGS(st->block_latency.latency()));
      gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
    }
    if (st->online && st->block_latency.live()) {
      const std::string doing = "VAE decoding (" + std::to_string(8 * st->shape.width) + "x" +
                                std::to_string(8 * st->shape.height) + " on " + st->device.str() + ")";
      st->block_latency.warn_if_behind(GST_ELEMENT(self), doing.c_str(),
                                       "a smaller size, or decoding on a GPU (cuda-device-id), on its own GPU after a "
                                       "queue if the DiT has one");
    }
    post_block_progress(self, block.pts, frames, seconds / static_cast<double>(blocks.size()));
    if (ret != GST_FLOW_OK) return ret;
  }
  return GST_FLOW_OK;
}

// Offline: decodes every kept block. Online: nothing is pending.
GstFlowReturn drain(GstLaVaeDecode* self) {
  State* st = self->st;
  if (!st->stream || st->stream->pending_blocks() == 0) return GST_FLOW_OK;
  const size_t pending = st->stream->pending_blocks();
  std::vector<la::elements::DecodedBlock> blocks;
  const auto start = std::chrono::steady_clock::now();
  try {
    blocks = st->stream->finish();
  } catch (const std::exception& e) {
    post_engine_error(self, e);
    return GST_FLOW_ERROR;
  }
  st->stage.synchronize();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  GST_DEBUG_OBJECT(self, "decoded %zu kept blocks in %.3f s", pending, seconds);
  return push_decoded(self, blocks, seconds);
}

// Picks the output memory and format with downstream (our order of
// preference first) and sets up the pool for GstCudaMemory.
bool negotiate_output(GstLaVaeDecode* self, const la::gst::LatentShape& shape) {
  State* st = self->st;
  // This negotiation answers any pending reconfigure: a pad is linked with
  // the flag set, and without clearing it the first block would negotiate
  // again and send the same caps a second time.
  gst_pad_check_reconfigure(self->parent.srcpad);
  GstCaps* common = la::gst::pick_caps_with_peer(self->parent.srcpad, output_caps(shape, st->cuda_context != nullptr));
  if (!common) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION,
                      ("downstream accepts none of video/x-raw RGBA, RGB, I420, NV12 at %dx%d, 25 fps",
                       8 * shape.width, 8 * shape.height),
                      ("%s", st->cuda_context ? "offered memory:CUDAMemory and system memory" : "offered system memory"));
    return false;
  }
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, common)) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("cannot read the negotiated video caps"), ("%" GST_PTR_FORMAT, common));
    gst_caps_unref(common);
    return false;
  }
  const auto format = la::video::pixel_format_from_name(gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info)));
  const bool cuda_memory =
      gst_caps_features_contains(gst_caps_get_features(common, 0), GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY);
  // Our system-memory frames are tightly packed; GStreamer's default layout
  // is the same for these formats at widths that are multiples of 8. Checked,
  // not assumed. (CUDA frames are copied plane by plane into padded rows.)
  if (!cuda_memory &&
      GST_VIDEO_INFO_SIZE(&info) !=
          static_cast<gsize>(la::video::frame_bytes(format, GST_VIDEO_INFO_WIDTH(&info), GST_VIDEO_INFO_HEIGHT(&info)))) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("frame layout of %" GST_PTR_FORMAT " is not tightly packed", common),
                      (nullptr));
    gst_caps_unref(common);
    return false;
  }
  // Downstream asked again (a RECONFIGURE) but takes the same caps: nothing to
  // send or set up; the frames go on as they were.
  GstCaps* current = gst_pad_get_current_caps(self->parent.srcpad);
  const bool unchanged = current && gst_caps_is_equal(current, common) && st->stream &&
                         (!cuda_memory || st->cuda_frames);
  if (current) gst_caps_unref(current);
  if (unchanged) {
    gst_caps_unref(common);
    return true;
  }
  GST_INFO_OBJECT(self, "output %" GST_PTR_FORMAT, common);
  st->cuda_frames.reset();  // the old pool's buffers go back to it as downstream releases them
  bool ok = gst_pad_push_event(self->parent.srcpad, gst_event_new_caps(common));
  if (ok && cuda_memory) {
    try {
      st->cuda_frames = std::make_unique<la::gst::CudaFramePool>(self->parent.srcpad, common, st->cuda_context, st->device);
      GST_INFO_OBJECT(self, "frames from %s GstCudaBufferPool",
                      st->cuda_frames->downstream_pool() ? "downstream's" : "our own");
    } catch (const std::exception& e) {
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("CUDA memory output: %s", e.what()), ("%" GST_PTR_FORMAT, common));
      ok = false;
    }
  }
  gst_caps_unref(common);
  if (!ok) return false;
  if (st->stream) {
    st->stream->set_format(format, cuda_memory);
    st->last_frame = at::Tensor();  // in the old format
  } else {
    st->stream = std::make_unique<la::elements::VaeDecodeStream>(st->vae, format, st->online, cuda_memory);
  }
  return true;
}

bool set_sink_caps(GstLaVaeDecode* self, GstCaps* caps) {
  State* st = self->st;
  la::gst::LatentShape shape;
  std::string why;
  if (la::gst::parse_latent_caps(caps, &shape, &why)) {
    const int64_t z = st->vae->config().z_dim;
    if (shape.channels != z)
      why = "channels=" + std::to_string(shape.channels) + " but the VAE " + st->vae_path + " decodes " +
            std::to_string(z) + " latent channels";
    else if (shape.frames != 3)
      why = "frames=" + std::to_string(shape.frames) +
            " but a block is 3 latent frames (12 video frames); liveavatargen sends such blocks";
  }
  if (!why.empty()) {
    if (st->refused_caps.first_refusal(caps))
      GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("upstream latent caps do not fit lavaedecode: %s", why.c_str()),
                        ("caps %" GST_PTR_FORMAT, caps));
    return false;
  }
  st->refused_caps.reset();
  if (st->have_shape && !(shape == st->shape)) {
    // Another size: what came before was another stream.
    drain(self);
    restart_stream(st);
  }
  {
    std::lock_guard<std::mutex> g(st->lock);
    st->shape = shape;
    st->have_shape = true;
  }
  return negotiate_output(self, shape);
}

// Once per stream: online=false decodes only at the end of the stream, so a live pipeline
// waits for it (its sinks cannot preroll) until EOS.
void warn_offline_with_live_source(GstLaVaeDecode* self) {
  if (!self->st->warned_not_live.exchange(true))
    GST_ELEMENT_WARNING(self, CORE, NEGOTIATION,
                        ("online=false cannot run with a live source: no frames until the stream ends (EOS), so "
                         "the pipeline waits until then"),
                        ("online=false decodes only at the end of the stream; use online=true"));
}

GstFlowReturn chain(GstPad*, GstObject* parent, GstBuffer* buffer) {
  auto* self = LA_VAE_DECODE(parent);
  State* st = self->st;
  const la::gst::StageScope on_stage(st->stage);
  if (!st->stream) {
    gst_buffer_unref(buffer);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("latents arrived before negotiated caps"), (nullptr));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (gst_pad_check_reconfigure(self->parent.srcpad) && !negotiate_output(self, st->shape)) {
    gst_pad_mark_reconfigure(self->parent.srcpad);
    gst_buffer_unref(buffer);
    return GST_PAD_IS_FLUSHING(self->parent.srcpad) ? GST_FLOW_FLUSHING : GST_FLOW_NOT_NEGOTIATED;
  }
  GstClockTime pts = GST_BUFFER_PTS(buffer);
  if (!GST_CLOCK_TIME_IS_VALID(pts))
    pts = GST_CLOCK_TIME_IS_VALID(st->t0) ? st->t0 + st->frames_out * kFrameDuration : st->segment.start;
  if (!GST_CLOCK_TIME_IS_VALID(st->t0)) {
    st->t0 = pts;
    // Asked at the first block: the LATENCY query that would say it comes only once the sinks
    // have prerolled, which they cannot before the stream ends.
    if (!st->online && la::gst::upstream_is_live(self->parent.sinkpad)) warn_offline_with_live_source(self);
  }

  std::vector<la::elements::DecodedBlock> decoded;
  const auto start = std::chrono::steady_clock::now();
  try {
    const at::Tensor latents = la::gst::buffer_to_tensor(buffer, st->shape.sizes(), st->shape.dtype);
    decoded = st->stream->push(latents, pts);
  } catch (const std::invalid_argument& e) {
    gst_buffer_unref(buffer);
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("latent buffer does not match its caps: %s", e.what()),
                      ("latent-height=%d latent-width=%d", st->shape.height, st->shape.width));
    return GST_FLOW_ERROR;
  } catch (const std::exception& e) {
    gst_buffer_unref(buffer);
    post_engine_error(self, e);
    return GST_FLOW_ERROR;
  }
  gst_buffer_unref(buffer);
  st->stage.synchronize();  // the device's time too, not only the enqueueing
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return push_decoded(self, decoded, seconds);
}

gboolean sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  auto* self = LA_VAE_DECODE(parent);
  State* st = self->st;
  const la::gst::StageScope on_stage(st->stage);  // draining decodes, a gap writes frames
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps* caps;
      gst_event_parse_caps(event, &caps);
      const bool ok = set_sink_caps(self, caps);
      gst_event_unref(event);
      return ok;
    }
    case GST_EVENT_SEGMENT: {
      drain(self);
      restart_stream(st);
      return gst_pad_push_event(self->parent.srcpad, la::gst::time_segment_event(GST_OBJECT(self), event, &st->segment));
    }
    case GST_EVENT_EOS:
    case GST_EVENT_SEGMENT_DONE:  // the end of a segment seek's segment: its kept blocks too
      drain(self);
      return gst_pad_push_event(self->parent.srcpad, event);
    case GST_EVENT_GAP:
      return fill_gap(self, event);
    case GST_EVENT_FLUSH_STOP:
      restart_stream(st);
      gst_segment_init(&st->segment, GST_FORMAT_TIME);
      return gst_pad_push_event(self->parent.srcpad, event);
    default:
      return gst_pad_event_default(pad, parent, event);
  }
}

// Shares our CUDA context with neighbours that ask (gst.cuda.context), in
// any state: before NULL->READY (an nvcodec element downstream starts first
// and looks for one in its own NULL->READY) the configured device's wrapped
// primary context is made on demand, the same object load_models() takes.
bool context_query(GstLaVaeDecode* self, GstQuery* query) {
  GstCudaContext* context = nullptr;
  int device_id = -1;
  {
    std::lock_guard<std::mutex> g(self->st->lock);
    if (self->st->cuda_context) context = static_cast<GstCudaContext*>(gst_object_ref(self->st->cuda_context));
    device_id = self->st->settings.cuda_device_id;
  }
  if (!context) return la::gst::answer_cuda_context_query(GST_ELEMENT(self), query, device_id);
  const bool answered = gst_cuda_handle_context_query(GST_ELEMENT(self), query, context);
  gst_object_unref(context);
  return answered;
}

gboolean sink_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  if (GST_QUERY_TYPE(query) == GST_QUERY_ACCEPT_CAPS)
    return la::gst::accept_fixed_caps_of(query, la::gst::kLatentMediaType);
  if (GST_QUERY_TYPE(query) == GST_QUERY_CAPS)
    return la::gst::answer_caps_query_any_fields(query, la::gst::kLatentMediaType);
  if (GST_QUERY_TYPE(query) == GST_QUERY_CONTEXT && context_query(LA_VAE_DECODE(parent), query)) return TRUE;
  return gst_pad_query_default(pad, parent, query);
}

gboolean latency_query(GstLaVaeDecode* self, GstQuery* query) {
  State* st = self->st;
  if (!gst_pad_peer_query(self->parent.sinkpad, query)) return FALSE;
  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency(query, &live, &min, &max);
  if (!st->online) {
    if (live) {
      warn_offline_with_live_source(self);
      return FALSE;
    }
    return TRUE;
  }
  // A block's frames come out its decoding time after the block came in.
  st->block_latency.answer(query);
  return TRUE;
}

gboolean src_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  auto* self = LA_VAE_DECODE(parent);
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_LATENCY:
      return latency_query(self, query);
    case GST_QUERY_CAPS: {
      GstCaps* caps;
      {
        std::lock_guard<std::mutex> g(self->st->lock);
        caps = self->st->have_shape ? output_caps(self->st->shape, self->st->cuda_context != nullptr)
                                    : gst_pad_get_pad_template_caps(pad);
      }
      return la::gst::answer_caps_query(query, caps);
    }
    case GST_QUERY_CONTEXT:
      if (context_query(self, query)) return TRUE;
      return gst_pad_query_default(pad, parent, query);
    default:
      return gst_pad_query_default(pad, parent, query);
  }
}

// vae= wins over checkpoint-dir=; errors name the path and what was expected.
bool resolve_vae_path(GstLaVaeDecode* self, const Settings& s, std::string* path) {
  std::error_code ec;
  if (!s.vae_path.empty()) {
    *path = s.vae_path;
  } else if (!s.checkpoint_dir.empty()) {
    if (!std::filesystem::is_directory(s.checkpoint_dir, ec)) {
      GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("checkpoint-dir '%s' is not a directory", s.checkpoint_dir.c_str()),
                        ("expected the Wan2.2-S2V-14B directory that contains %s", kVaeFileName));
      return false;
    }
    *path = (std::filesystem::path(s.checkpoint_dir) / kVaeFileName).string();
  } else {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("neither checkpoint-dir nor vae is set"),
                      ("set checkpoint-dir to the Wan2.2-S2V-14B directory (with %s) or vae to the file", kVaeFileName));
    return false;
  }
  if (!std::filesystem::is_regular_file(*path, ec)) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("VAE file '%s' does not exist", path->c_str()),
                      ("%s", s.vae_path.empty() ? "checkpoint-dir must be the Wan2.2-S2V-14B directory that contains "
                                                  "Wan2.1_VAE.pth"
                                                : "vae must name the Wan2.1_VAE.pth file"));
    return false;
  }
  return true;
}

// NULL->READY (gst/stage_element.h).
bool load_models(GstLaStageElement* element) {
  auto* self = LA_VAE_DECODE(element);
  State* st = self->st;
  Settings s;
  {
    std::lock_guard<std::mutex> g(st->lock);
    s = st->settings;
  }
  std::string path;
  if (!resolve_vae_path(self, s, &path)) return false;
  if (!st->stage.open(GST_ELEMENT(self), s.cuda_device_id)) return false;
  const c10::Device device = st->stage.device();
  const at::ScalarType dtype = st->stage.dtype();
  std::shared_ptr<const la::models::WanVae> vae;
  try {
    vae = la::gst::shared_model<la::models::WanVae>(path, device, dtype, "",
                                                    [&] { return la::models::WanVae::load(path, device, dtype); });
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("cannot load the VAE from '%s': %s", path.c_str(), e.what()),
                      ("expected the Wan 2.1 VAE checkpoint (Wan2.1_VAE.pth)"));
    return false;
  }
  GST_INFO_OBJECT(self, "VAE %s on %s (%s), %" G_GINT64_FORMAT " latent channels", path.c_str(), device.str().c_str(),
                  c10::toString(dtype), vae->config().z_dim);
  GstCudaContext* cuda_context = nullptr;
  if (device.is_cuda()) {
    try {
      cuda_context = la::gst::primary_cuda_context(device.index());
      la::gst::announce_cuda_context(GST_ELEMENT(self), cuda_context);
    } catch (const std::exception& e) {
      GST_ELEMENT_WARNING(self, RESOURCE, SETTINGS, ("no memory:CUDAMemory output, frames go to system memory: %s",
                                                     e.what()),
                          ("decoding still runs on %s", device.str().c_str()));
    }
  }
  std::lock_guard<std::mutex> g(st->lock);
  st->vae = std::move(vae);
  st->vae_path = path;
  st->device = device;
  st->cuda_context = cuda_context;
  return true;
}

// READY->PAUSED.
bool start_stream(GstLaStageElement* element) {
  State* st = LA_VAE_DECODE(element)->st;
  std::lock_guard<std::mutex> g(st->lock);
  st->online = st->settings.online;
  st->warned_not_live = false;
  gst_segment_init(&st->segment, GST_FORMAT_TIME);
  restart_stream(st);
  return true;
}

// PAUSED->READY, the streaming thread stopped.
void stop_stream(GstLaStageElement* element) {
  State* st = LA_VAE_DECODE(element)->st;
  std::lock_guard<std::mutex> g(st->lock);
  st->stream.reset();
  st->cuda_frames.reset();
  st->have_shape = false;
  st->refused_caps.reset();
}

// READY->NULL, and after a failed NULL->READY: what load_models() got.
void release_models(GstLaStageElement* element) {
  State* st = LA_VAE_DECODE(element)->st;
  std::lock_guard<std::mutex> g(st->lock);
  st->vae.reset();
  if (st->cuda_context) gst_object_unref(st->cuda_context);
  st->cuda_context = nullptr;
}

}  // namespace

static void gst_la_vae_decode_set_property(GObject* object, guint id, const GValue* value, GParamSpec* pspec) {
  la::gst::warn_if_set_while_running(GST_ELEMENT(object), pspec, value);
  State* st = LA_VAE_DECODE(object)->st;
  std::lock_guard<std::mutex> g(st->lock);
  Settings& s = st->settings;
  switch (id) {
    case PROP_CHECKPOINT_DIR: {
      const char* dir = g_value_get_string(value);
      s.checkpoint_dir = dir ? dir : "";
      break;
    }
    case PROP_VAE: {
      const char* file = g_value_get_string(value);
      s.vae_path = file ? file : "";
      break;
    }
    case PROP_CUDA_DEVICE_ID: s.cuda_device_id = g_value_get_int(value); break;
    case PROP_ONLINE: s.online = g_value_get_boolean(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
  }
}

static void gst_la_vae_decode_get_property(GObject* object, guint id, GValue* value, GParamSpec* pspec) {
  State* st = LA_VAE_DECODE(object)->st;
  std::lock_guard<std::mutex> g(st->lock);
  const Settings& s = st->settings;
  switch (id) {
    case PROP_CHECKPOINT_DIR:
      g_value_set_string(value, s.checkpoint_dir.empty() ? nullptr : s.checkpoint_dir.c_str());
      break;
    case PROP_VAE: g_value_set_string(value, s.vae_path.empty() ? nullptr : s.vae_path.c_str()); break;
    case PROP_CUDA_DEVICE_ID: g_value_set_int(value, s.cuda_device_id); break;
    case PROP_ONLINE: g_value_set_boolean(value, s.online); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
  }
}

static void gst_la_vae_decode_finalize(GObject* object) {
  delete LA_VAE_DECODE(object)->st;
  G_OBJECT_CLASS(gst_la_vae_decode_parent_class)->finalize(object);
}

static void gst_la_vae_decode_class_init(GstLaVaeDecodeClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_la_vae_decode_set_property;
  gobject_class->get_property = gst_la_vae_decode_get_property;
  gobject_class->finalize = gst_la_vae_decode_finalize;
  GstLaStageElementClass* stage_class = GST_LA_STAGE_ELEMENT_CLASS(klass);
  stage_class->open = load_models;
  stage_class->start = start_stream;
  stage_class->stop = stop_stream;
  stage_class->close = release_models;

  // checkpoint-dir, vae and cuda-device-id are read at NULL->READY, online at READY->PAUSED.
  // Changeable only in NULL or READY (a change while running posts a warning, gst/property_state.h).
  const auto load_flags =
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_CHECKPOINT_DIR,
      g_param_spec_string("checkpoint-dir", "Checkpoint directory",
                          "The Wan2.2-S2V-14B directory; the VAE is its Wan2.1_VAE.pth. Loaded at NULL->READY, "
                          "shared with other elements using the same file",
                          nullptr, load_flags));
  g_object_class_install_property(
      gobject_class, PROP_VAE,
      g_param_spec_string("vae", "VAE file",
                          "Path of Wan2.1_VAE.pth (or a .safetensors with its keys); overrides checkpoint-dir",
                          nullptr, load_flags));
  g_object_class_install_property(
      gobject_class, PROP_CUDA_DEVICE_ID,
      g_param_spec_int("cuda-device-id", "CUDA device id",
                       "CUDA device to decode on (bf16), -1 for the CPU (fp32); a device that does not exist fails "
                       "the NULL->READY change. On CUDA, frames stay on the device where downstream takes "
                       "memory:CUDAMemory (cudaconvert, nvh264enc), else they go to system memory",
                       -1, 1023, -1, load_flags));
  g_object_class_install_property(
      gobject_class, PROP_ONLINE,
      g_param_spec_boolean("online", "Online decode",
                           "true: decode each block as it arrives (live); false: keep every latent until EOS or a "
                           "new segment and decode them then, as the reference does (same frames, memory grows "
                           "with the stream, not live)",
                           TRUE, load_flags));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(element_class, "LiveAvatar VAE decoder", "Decoder/Video",
                                        "Wan 2.1 VAE streaming decode: latent blocks [16,3,h,w] to 12 video frames "
                                        "each at 8w x 8h, 25 fps",
                                        "the gst-liveavatar developers");
  GST_DEBUG_CATEGORY_INIT(gst_la_vae_decode_debug, "lavaedecode", 0, "LiveAvatar VAE decoder");
}

static void gst_la_vae_decode_init(GstLaVaeDecode* self) {
  self->st = new State(*self->parent.stage);
  gst_segment_init(&self->st->segment, GST_FORMAT_TIME);
  gst_pad_set_chain_function(self->parent.sinkpad, chain);
  gst_pad_set_event_function(self->parent.sinkpad, sink_event);
  gst_pad_set_query_function(self->parent.sinkpad, sink_query);
  gst_pad_set_query_function(self->parent.srcpad, src_query);
}

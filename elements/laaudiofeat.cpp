/* gst-launch-1.0 audiotestsrc num-buffers=100 ! audioconvert ! audioresample ! laaudiofeat model-dir=ckpt/Wan2.2-S2V-14B/wav2vec2-large-xlsr-53-english ! fakesink
 *
 * laaudiofeat: 16 kHz mono audio -> the DiT's audio features, one buffer per
 * block of 0.48 s (12 video frames at 25 fps): wav2vec2 (all hidden states),
 * 50 -> 30 Hz interpolation, one 30 Hz frame per video frame
 * (engine/audio/audio_features.h). Reference: docs/elements.md.
 *
 * Block b of an utterance covers [t0 + 0.48 b, t0 + 0.48 (b+1)), t0 being the
 * time of its first sample (the first buffer's PTS, or the segment start);
 * an utterance of N samples gives ceil(N / 7680) blocks, the last padded with
 * zero features past the audio. An utterance ends at EOS or a new segment (the
 * blocks so far are drained) and at FLUSH_STOP (dropped).
 *
 * mode=streaming follows the audio's timestamps (elements/audio_timeline.h):
 * a buffer stamped later than the audio so far (a pause of a live source, a
 * DISCONT after lost data) or a GAP event is preceded by silence up to its
 * time, so blocks stay continuous and each block still covers the audio of its
 * own time; samples stamped before time already covered are dropped. In
 * mode=offline a DISCONT ends the utterance instead (as before: the
 * reference's numerics over each contiguous piece of audio).
 *
 * Idle (streaming, live sources, idle-timeout > 0): while a live source sends
 * nothing at all, a clock-driven thread (gst/running_time_ticker.h) adds
 * silence up to the pipeline's running time minus (upstream latency +
 * idle-timeout), so blocks, and the avatar's video, keep coming at 25 fps;
 * audio that comes back is placed at its own timestamp (and anything it
 * overlaps of that silence is dropped from it). Idle starts after the first
 * audio (it anchors the stream's time); the latency this adds is reported.
 *
 * mode=streaming emits each block once `lookahead` seconds past its end have
 * arrived (latency 0.48 s + lookahead); mode=offline reproduces the
 * reference's numerics and emits everything when the utterance ends, so it
 * cannot run live.
 */
#include <gst/gst.h>

#include <ATen/ATen.h>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "elements/audio_feature_stream.h"
#include "elements/audio_timeline.h"
#include "gst/element_registration.h"
#include "gst/media_types.h"
#include "gst/model_cache.h"
#include "gst/pad_queries.h"
#include "gst/property_state.h"
#include "gst/block_latency.h"
#include "gst/running_time_ticker.h"
#include "gst/stage_device.h"
#include "gst/stage_element.h"
#include "gst/tensor_memory.h"

GST_DEBUG_CATEGORY_STATIC(gst_la_audio_feat_debug);
#define GST_CAT_DEFAULT gst_la_audio_feat_debug

namespace {

using la::elements::FeatureMode;

constexpr GstClockTime kBlockDuration = 480 * GST_MSECOND;
constexpr double kDefaultContext = 2.0, kDefaultLookahead = 0.16, kDefaultIdleTimeout = 0.2;
// How often the idle filler looks at the clock: one video frame.
constexpr std::chrono::milliseconds kIdleTick{40};

enum { PROP_0, PROP_MODEL_DIR, PROP_MODE, PROP_CONTEXT, PROP_LOOKAHEAD, PROP_CUDA_DEVICE_ID, PROP_IDLE_TIMEOUT };

struct Settings {
  std::string model_dir;
  FeatureMode mode = FeatureMode::kStreaming;
  double context = kDefaultContext, lookahead = kDefaultLookahead;
  int cuda_device_id = -1;
  double idle_timeout = kDefaultIdleTimeout;  // seconds; 0: no idle filler
};

// The element's C++ members.
struct State {
  explicit State(la::gst::StageDevice& stage_device) : stage(stage_device) {}
  std::mutex lock;  // guards settings, model and shape (queries come from any thread)
  Settings settings;
  std::shared_ptr<const la::models::Wav2Vec2> model;  // NULL->READY .. READY->NULL
  la::gst::FeaturesShape shape;
  bool on_gpu = false;  // the model's device is CUDA
  // The device and this stage's CUDA stream (NULL->READY .. READY->NULL; the
  // base class's); every thread that computes features (streaming, idle
  // filler) enters it.
  la::gst::StageDevice& stage;

  // Set in READY->PAUSED; then used under stream_lock: by the streaming
  // thread and by the idle filler's thread.
  std::mutex stream_lock;
  std::unique_ptr<la::elements::AudioFeatureStream> stream;
  bool eos = false;  // no idle silence after EOS (until a flush)
  GstSegment segment;
  la::elements::AudioTimeline timeline;  // where the utterance's samples sit in time (t0 = first sample)
  uint64_t next_block = 0;               // blocks pushed in this utterance
  bool discont = true;
  // Running time at which the streaming thread last came back from its work
  // (NONE: not yet): from then on upstream could deliver, and idle is
  // measured from there.
  GstClockTime ready_since = GST_CLOCK_TIME_NONE;
  bool tensor_memory_out = false;  // negotiated memory:LiveAvatarTensor: blocks stay on the model's device

  // For LATENCY queries, which come from any thread: set at READY->PAUSED.
  std::atomic<bool> running{false}, offline{false};
  std::atomic<GstClockTime> latency{0};  // buffering: the block and the lookahead
  // Measured time to compute a block's features (streaming): part of the
  // latency, re-posted when it grows (gst/block_latency.h).
  la::gst::BlockLatency processing;
  std::atomic<bool> warned_not_live{false};

  // Idle filler: its thread (READY->PAUSED .. PAUSED->READY, streaming mode),
  // its delay, and what the last LATENCY query said of upstream.
  std::unique_ptr<la::gst::RunningTimeTicker> idle;
  GstClockTime idle_timeout = 0;
  std::atomic<bool> upstream_live{false};
  std::atomic<GstClockTime> upstream_latency{0};
};

GType mode_get_type() {
  static const GType type = [] {
    static const GEnumValue values[] = {
        {static_cast<gint>(FeatureMode::kStreaming),
         "Streaming: bounded context and lookahead, one block per 0.48 s (live)", "streaming"},
        {static_cast<gint>(FeatureMode::kOffline),
         "Offline: the reference's numerics over the whole utterance, output at its end (not live)", "offline"},
        {0, nullptr, nullptr}};
    return g_enum_register_static("GstLaAudioFeatMode", values);
  }();
  return type;
}

}  // namespace

struct GstLaAudioFeat {
  GstLaStageElement parent;  // the pads, the stage's device, the state changes (gst/stage_element.h)
  State* st;
};
struct GstLaAudioFeatClass {
  GstLaStageElementClass parent_class;
};

G_DEFINE_TYPE(GstLaAudioFeat, gst_la_audio_feat, GST_TYPE_LA_STAGE_ELEMENT)
GST_ELEMENT_REGISTER_DEFINE(laaudiofeat, "laaudiofeat", GST_RANK_NONE, gst_la_audio_feat_get_type())

#define LA_AUDIO_FEAT(obj) (reinterpret_cast<GstLaAudioFeat*>(obj))

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS,
                            GST_STATIC_CAPS("audio/x-raw, format=(string)F32LE, rate=(int)16000, channels=(int)1, "
                                            "layout=(string)interleaved"));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(LA_FEATURES_CAPS_TEMPLATE));

namespace {

void post_engine_error(GstLaAudioFeat* self, const std::exception& e) {
  GST_ELEMENT_ERROR(self, STREAM, FAILED, ("audio features failed: %s", e.what()),
                    ("in the wav2vec2 / feature pipeline of engine/audio/audio_features"));
}

// The stream's push(), timed: computing a block's features is part of the
// latency we answer (a LATENCY message when the measurement grows).
std::vector<at::Tensor> compute_blocks(GstLaAudioFeat* self, const float* samples, size_t count) {
  State* st = self->st;
  const auto start = std::chrono::steady_clock::now();
  std::vector<at::Tensor> blocks = st->stream->push(samples, count);
  if (blocks.empty() || st->stream->mode() != FeatureMode::kStreaming) return blocks;
  st->stage.synchronize();  // the device's time too, not only the enqueueing
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
                         static_cast<double>(blocks.size());
  bool grew = false;
  for (size_t i = 0; i < blocks.size(); ++i) grew |= st->processing.record(seconds, kBlockDuration);
  if (grew) gst_element_post_message(GST_ELEMENT(self), gst_message_new_latency(GST_OBJECT(self)));
  return blocks;
}

// Pushes finished blocks with their timestamps (block b at t0 + 0.48 b).
GstFlowReturn push_blocks(GstLaAudioFeat* self, const std::vector<at::Tensor>& blocks) {
  State* st = self->st;
  for (const at::Tensor& block : blocks) {
    // Tensor memory: the block stays where wav2vec2 ran (zero-copy on a GPU;
    // the buffer carries an event of this stage's stream for the consumer).
    // System memory: the block comes to the host (waits for this stage only).
    const at::Tensor features = st->tensor_memory_out ? block.to(at::kFloat) : block.to(at::kCPU, at::kFloat);
    GstBuffer* out = la::gst::buffer_new_from_tensor(features.contiguous());
    GST_BUFFER_PTS(out) = st->timeline.t0() + st->next_block * kBlockDuration;
    GST_BUFFER_DURATION(out) = kBlockDuration;
    GST_BUFFER_OFFSET(out) = st->next_block;
    GST_BUFFER_OFFSET_END(out) = st->next_block + 1;
    if (st->discont) {
      GST_BUFFER_FLAG_SET(out, GST_BUFFER_FLAG_DISCONT);
      st->discont = false;
    }
    ++st->next_block;
    GST_LOG_OBJECT(self, "block %" G_GUINT64_FORMAT " at %" GST_TIME_FORMAT, st->next_block - 1,
                   GST_TIME_ARGS(GST_BUFFER_PTS(out)));
    const GstFlowReturn ret = gst_pad_push(self->parent.srcpad, out);
    if (ret != GST_FLOW_OK) return ret;
  }
  return GST_FLOW_OK;
}

void start_utterance(State* st) {
  st->timeline.reset();
  st->ready_since = GST_CLOCK_TIME_NONE;
  st->next_block = 0;
  st->discont = true;
}

// Ends the utterance: its remaining blocks go out, the next sample starts a new one.
GstFlowReturn drain(GstLaAudioFeat* self) {
  State* st = self->st;
  if (!st->stream || st->stream->empty()) return GST_FLOW_OK;
  std::vector<at::Tensor> blocks;
  try {
    blocks = st->stream->finish();
  } catch (const std::exception& e) {
    post_engine_error(self, e);
    return GST_FLOW_ERROR;
  }
  GST_DEBUG_OBJECT(self, "drained %zu blocks", blocks.size());
  const GstFlowReturn ret = push_blocks(self, blocks);
  start_utterance(st);
  return ret;
}

// Adds `samples` of silence to the utterance (streaming mode: the time a live
// source skipped), a block at a time so a long pause needs no large buffer.
GstFlowReturn push_silence(GstLaAudioFeat* self, int64_t samples) {
  State* st = self->st;
  static const std::vector<float> zeros(7680, 0.0f);
  while (samples > 0) {
    const auto n = static_cast<size_t>(std::min<int64_t>(samples, static_cast<int64_t>(zeros.size())));
    std::vector<at::Tensor> blocks;
    try {
      blocks = compute_blocks(self, zeros.data(), n);
    } catch (const std::exception& e) {
      post_engine_error(self, e);
      return GST_FLOW_ERROR;
    }
    st->timeline.advance(static_cast<int64_t>(n));
    samples -= static_cast<int64_t>(n);
    const GstFlowReturn ret = push_blocks(self, blocks);
    if (ret != GST_FLOW_OK) return ret;
  }
  return GST_FLOW_OK;
}

// Once per stream: mode=offline emits its blocks only when the utterance ends, so a live
// pipeline waits for it (its sinks cannot preroll) until EOS.
void warn_offline_with_live_source(GstLaAudioFeat* self) {
  if (!self->st->warned_not_live.exchange(true))
    GST_ELEMENT_WARNING(self, CORE, NEGOTIATION,
                        ("mode=offline cannot run with a live source: no features until the utterance ends (EOS), "
                         "so the pipeline waits until then"),
                        ("offline features are emitted only at the end of the utterance; use mode=streaming"));
}

GstFlowReturn chain(GstPad*, GstObject* parent, GstBuffer* buffer) {
  auto* self = LA_AUDIO_FEAT(parent);
  State* st = self->st;
  std::lock_guard<std::mutex> stream_guard(st->stream_lock);
  const la::gst::StageScope on_stage(st->stage);
  struct ReadyOnReturn {  // under stream_lock: destroyed before stream_guard
    GstLaAudioFeat* self;
    ~ReadyOnReturn() { self->st->ready_since = la::gst::running_time_now(GST_ELEMENT(self)); }
  } ready_on_return{self};
  if (!gst_pad_has_current_caps(self->parent.sinkpad)) {
    gst_buffer_unref(buffer);
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("audio arrived before its caps"), (nullptr));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  const bool streaming = st->stream->mode() == FeatureMode::kStreaming;
  if (GST_BUFFER_IS_DISCONT(buffer) && !streaming) {
    const GstFlowReturn ret = drain(self);
    if (ret != GST_FLOW_OK) {
      gst_buffer_unref(buffer);
      return ret;
    }
  }
  la::elements::AudioTimeline::Placement placement;
  if (!st->timeline.started()) {
    // Asked at the first buffer: the LATENCY query that would say it comes only once the sinks
    // have prerolled, which they cannot before the utterance ends.
    if (!streaming && la::gst::upstream_is_live(self->parent.sinkpad)) warn_offline_with_live_source(self);
    st->timeline.start(GST_BUFFER_PTS_IS_VALID(buffer) ? GST_BUFFER_PTS(buffer) : st->segment.start);
  } else if (streaming && GST_BUFFER_PTS_IS_VALID(buffer)) {
    placement = st->timeline.place(GST_BUFFER_PTS(buffer), static_cast<int64_t>(gst_buffer_get_size(buffer) / sizeof(float)));
    if (placement.silence > 0 || placement.drop > 0)
      GST_DEBUG_OBJECT(self, "audio at %" GST_TIME_FORMAT " expected at %" GST_TIME_FORMAT ": %" G_GINT64_FORMAT
                       " samples of silence before it, %" G_GINT64_FORMAT " of its samples dropped",
                       GST_TIME_ARGS(GST_BUFFER_PTS(buffer)), GST_TIME_ARGS(st->timeline.next_time()),
                       placement.silence, placement.drop);
    const GstFlowReturn ret = push_silence(self, placement.silence);
    if (ret != GST_FLOW_OK) {
      gst_buffer_unref(buffer);
      return ret;
    }
  }

  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) {
    gst_buffer_unref(buffer);
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("cannot map an audio buffer"), (nullptr));
    return GST_FLOW_ERROR;
  }
  const size_t count = map.size / sizeof(float);
  if (map.size % sizeof(float) != 0) {
    gst_buffer_unmap(buffer, &map);
    gst_buffer_unref(buffer);
    GST_ELEMENT_ERROR(self, STREAM, FORMAT, ("audio buffer of %zu bytes is not a whole number of F32 samples", map.size),
                      (nullptr));
    return GST_FLOW_ERROR;
  }
  std::vector<float> aligned;  // only for buffers whose data is not float-aligned
  const float* samples = reinterpret_cast<const float*>(map.data);
  if (reinterpret_cast<uintptr_t>(map.data) % alignof(float) != 0) {
    aligned.resize(count);
    std::memcpy(aligned.data(), map.data, map.size);
    samples = aligned.data();
  }
  std::vector<at::Tensor> blocks;
  bool failed = false;
  const size_t drop = std::min(count, static_cast<size_t>(placement.drop));
  try {
    blocks = compute_blocks(self, samples + drop, count - drop);
    st->timeline.advance(static_cast<int64_t>(count - drop));
  } catch (const std::exception& e) {
    post_engine_error(self, e);
    failed = true;
  }
  gst_buffer_unmap(buffer, &map);
  gst_buffer_unref(buffer);
  return failed ? GST_FLOW_ERROR : push_blocks(self, blocks);
}

gboolean sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  auto* self = LA_AUDIO_FEAT(parent);
  State* st = self->st;
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      // The sink caps are the template's only caps (accept-caps checked
      // them); the output caps come from the loaded model.
      gst_event_unref(event);
      GstCaps* offer;
      {
        std::lock_guard<std::mutex> g(st->lock);
        offer = la::gst::offer_with_tensor_memory(la::gst::features_caps(st->shape), st->on_gpu);
      }
      GstCaps* caps = la::gst::pick_caps_with_peer(self->parent.srcpad, offer);
      if (!caps) {
        GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("downstream takes no %s caps of this wav2vec2's shape",
                                                    la::gst::kFeaturesMediaType),
                          ("the features are layers=%d channels=%d frames=%d", st->shape.layers, st->shape.channels,
                           st->shape.frames));
        return FALSE;
      }
      st->tensor_memory_out = la::gst::has_tensor_memory_feature(caps);
      const gboolean ok = gst_pad_push_event(self->parent.srcpad, gst_event_new_caps(caps));
      gst_caps_unref(caps);
      return ok;
    }
    case GST_EVENT_SEGMENT: {
      // The blocks so far belong to the old segment.
      std::lock_guard<std::mutex> stream_guard(st->stream_lock);
      const la::gst::StageScope on_stage(st->stage);
      drain(self);
      start_utterance(st);
      st->eos = false;
      return gst_pad_push_event(self->parent.srcpad, la::gst::time_segment_event(GST_OBJECT(self), event, &st->segment));
    }
    case GST_EVENT_EOS: {
      std::lock_guard<std::mutex> stream_guard(st->stream_lock);
      const la::gst::StageScope on_stage(st->stage);
      drain(self);
      st->eos = true;
      return gst_pad_push_event(self->parent.srcpad, event);
    }
    case GST_EVENT_SEGMENT_DONE: {
      // The end of a segment seek's segment (looping, gapless playback): its
      // last, partial block goes out before the event, as at EOS; the next
      // segment (a SEGMENT event) starts a new utterance.
      std::lock_guard<std::mutex> stream_guard(st->stream_lock);
      const la::gst::StageScope on_stage(st->stage);
      drain(self);
      return gst_pad_push_event(self->parent.srcpad, event);
    }
    case GST_EVENT_GAP: {
      // Streaming: no audio for [timestamp, timestamp + duration) is silence
      // there; the blocks that covers go out (the gap itself is not forwarded:
      // our output has no gap). Offline: forwarded as it is.
      if (!st->stream || st->stream->mode() != FeatureMode::kStreaming || !gst_pad_has_current_caps(self->parent.sinkpad))
        return gst_pad_event_default(pad, parent, event);
      GstClockTime ts, duration;
      gst_event_parse_gap(event, &ts, &duration);
      gst_event_unref(event);
      if (!GST_CLOCK_TIME_IS_VALID(ts)) return TRUE;
      std::lock_guard<std::mutex> stream_guard(st->stream_lock);
      const la::gst::StageScope on_stage(st->stage);
      if (!st->timeline.started()) st->timeline.start(ts);
      const GstClockTime end = GST_CLOCK_TIME_IS_VALID(duration) ? ts + duration : ts;
      GST_DEBUG_OBJECT(self, "gap until %" GST_TIME_FORMAT ": silence", GST_TIME_ARGS(end));
      return push_silence(self, st->timeline.samples_until(end)) == GST_FLOW_OK;
    }
    case GST_EVENT_FLUSH_STOP: {
      std::lock_guard<std::mutex> stream_guard(st->stream_lock);
      if (st->stream) st->stream->reset();
      start_utterance(st);
      st->eos = false;
      gst_segment_init(&st->segment, GST_FORMAT_TIME);
      return gst_pad_push_event(self->parent.srcpad, event);
    }
    default:
      return gst_pad_event_default(pad, parent, event);
  }
}

gboolean latency_query(GstLaAudioFeat* self, GstQuery* query) {
  State* st = self->st;
  if (!st->running || !gst_pad_peer_query(self->parent.sinkpad, query)) return FALSE;
  gboolean live;
  GstClockTime min, max;
  gst_query_parse_latency(query, &live, &min, &max);
  st->upstream_live = live;
  st->upstream_latency = min;
  if (st->offline) {
    if (live) {
      // Offline output waits for the end of the utterance: no finite latency.
      warn_offline_with_live_source(self);
      return FALSE;
    }
    return TRUE;
  }
  // The block and lookahead, the measured time to compute a block, and when
  // the idle filler runs, idle-timeout past what upstream may still deliver
  // plus one tick of its clock (it looks every 40 ms).
  const GstClockTime idle = live && st->idle ? st->idle_timeout + kIdleTick.count() * GST_MSECOND : 0;
  const GstClockTime ours = st->latency + st->processing.latency() + idle;
  GST_DEBUG_OBJECT(self, "latency: ours %" GST_TIME_FORMAT ", upstream min %" GST_TIME_FORMAT, GST_TIME_ARGS(ours),
                   GST_TIME_ARGS(min));
  la::gst::add_latency(query, ours);
  return TRUE;
}

gboolean src_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  auto* self = LA_AUDIO_FEAT(parent);
  switch (GST_QUERY_TYPE(query)) {
    case GST_QUERY_LATENCY:
      return latency_query(self, query);
    case GST_QUERY_CAPS: {
      GstCaps* caps;
      {
        std::lock_guard<std::mutex> g(self->st->lock);
        caps = self->st->model ? la::gst::offer_with_tensor_memory(la::gst::features_caps(self->st->shape),
                                                                   self->st->on_gpu)
                               : gst_pad_get_pad_template_caps(pad);
      }
      return la::gst::answer_caps_query(query, caps);
    }
    default:
      return gst_pad_query_default(pad, parent, query);
  }
}

// NULL->READY (gst/stage_element.h).
bool load_models(GstLaStageElement* element) {
  auto* self = LA_AUDIO_FEAT(element);
  State* st = self->st;
  Settings s;
  {
    std::lock_guard<std::mutex> g(st->lock);
    s = st->settings;
  }
  if (s.model_dir.empty()) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("model-dir is not set"),
                      ("set model-dir to the wav2vec2 directory of the checkpoint, e.g. "
                       "<checkpoint-dir>/wav2vec2-large-xlsr-53-english"));
    return false;
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(s.model_dir, ec)) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("model-dir '%s' is not a directory", s.model_dir.c_str()),
                      ("expected the wav2vec2 directory of the checkpoint (config.json and model.safetensors), e.g. "
                       "<checkpoint-dir>/wav2vec2-large-xlsr-53-english"));
    return false;
  }
  if (!st->stage.open(GST_ELEMENT(self), s.cuda_device_id)) return false;
  const c10::Device device = st->stage.device();
  const at::ScalarType dtype = st->stage.dtype();
  try {
    auto model = la::gst::shared_model<la::models::Wav2Vec2>(
        s.model_dir, device, dtype, "", [&] { return la::models::Wav2Vec2::load(s.model_dir, device, dtype); });
    std::lock_guard<std::mutex> g(st->lock);
    st->model = model;
    st->on_gpu = device.is_cuda();
    st->shape = {static_cast<int>(model->config().num_hidden_layers + 1),
                 static_cast<int>(model->config().hidden_size), static_cast<int>(la::audio::kFramesPerBlock)};
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(self, RESOURCE, READ, ("cannot load wav2vec2 from model-dir '%s': %s", s.model_dir.c_str(), e.what()),
                      ("model-dir must be the HF wav2vec2-large-xlsr-53-english directory"));
    return false;
  }
  GST_INFO_OBJECT(self, "wav2vec2 from %s on %s: %d layers x %d channels", s.model_dir.c_str(), device.str().c_str(),
                  st->shape.layers, st->shape.channels);
  return true;
}

// The idle filler's tick: with a live source, silence up to the running time
// by which upstream would have delivered audio (its latency) plus idle-timeout.
void idle_tick(GstLaAudioFeat* self, GstClockTime running) {
  State* st = self->st;
  if (!st->upstream_live) return;
  const GstClockTime delay = st->upstream_latency + st->idle_timeout;
  std::lock_guard<std::mutex> stream_guard(st->stream_lock);
  const la::gst::StageScope on_stage(st->stage);  // the clock thread computes features too
  if (!st->stream || st->eos || !st->timeline.started() || running < delay ||
      st->segment.format != GST_FORMAT_TIME)
    return;
  // Not idle while upstream could not deliver: this thread may have waited
  // for stream_lock while the streaming thread pushed a slow block downstream
  // (generation slower than real time); the source's next buffer, late but
  // real, comes right after, and silence now would take its place. One tick
  // of readiness lets it in.
  const GstClockTime now = la::gst::running_time_now(GST_ELEMENT(self));
  if (!GST_CLOCK_TIME_IS_VALID(now) ||
      (GST_CLOCK_TIME_IS_VALID(st->ready_since) && now < st->ready_since + kIdleTick.count() * GST_MSECOND))
    return;
  const guint64 until = gst_segment_position_from_running_time(&st->segment, GST_FORMAT_TIME, running - delay);
  if (!GST_CLOCK_TIME_IS_VALID(until)) return;
  // Whole video frames of silence (640 samples) keep the pushes few.
  const int64_t samples = st->timeline.samples_until(until) / 640 * 640;
  if (samples <= 0) return;
  GST_LOG_OBJECT(self, "idle: %" G_GINT64_FORMAT " samples of silence up to %" GST_TIME_FORMAT, samples,
                 GST_TIME_ARGS(until));
  const GstFlowReturn ret = push_silence(self, samples);
  if (ret != GST_FLOW_OK && ret != GST_FLOW_FLUSHING)
    GST_DEBUG_OBJECT(self, "idle silence: %s", gst_flow_get_name(ret));
}

// READY->PAUSED.
bool start_stream(GstLaStageElement* element) {
  auto* self = LA_AUDIO_FEAT(element);
  State* st = self->st;
  std::lock_guard<std::mutex> g(st->lock);
  const Settings& s = st->settings;
  st->stream = std::make_unique<la::elements::AudioFeatureStream>(st->model, s.mode, s.context, s.lookahead);
  gst_segment_init(&st->segment, GST_FORMAT_TIME);
  start_utterance(st);
  st->offline = s.mode == FeatureMode::kOffline;
  st->latency = gst_util_uint64_scale_int(static_cast<guint64>(st->stream->latency_samples()), GST_SECOND, 16000);
  st->processing.restart();
  st->warned_not_live = false;
  st->eos = false;
  st->upstream_live = false;
  st->idle_timeout = static_cast<GstClockTime>(s.idle_timeout * GST_SECOND);
  if (s.mode == FeatureMode::kStreaming && s.idle_timeout > 0)
    st->idle = std::make_unique<la::gst::RunningTimeTicker>(GST_ELEMENT(self), kIdleTick,
                                                            [self](GstClockTime t) { idle_tick(self, t); });
  st->running = true;
  return true;
}

// PAUSED->READY, the streaming thread stopped.
void stop_stream(GstLaStageElement* element) {
  State* st = LA_AUDIO_FEAT(element)->st;
  st->running = false;
  st->idle.reset();    // joins the idle filler (its pushes return FLUSHING now)
  st->stream.reset();
}

// READY->NULL, and after a failed NULL->READY: what load_models() got.
void release_models(GstLaStageElement* element) {
  State* st = LA_AUDIO_FEAT(element)->st;
  std::lock_guard<std::mutex> g(st->lock);
  st->model.reset();
}

}  // namespace

static void gst_la_audio_feat_set_property(GObject* object, guint id, const GValue* value, GParamSpec* pspec) {
  la::gst::warn_if_set_while_running(GST_ELEMENT(object), pspec, value);
  State* st = LA_AUDIO_FEAT(object)->st;
  std::lock_guard<std::mutex> g(st->lock);
  Settings& s = st->settings;
  switch (id) {
    case PROP_MODEL_DIR: {
      const char* dir = g_value_get_string(value);
      s.model_dir = dir ? dir : "";
      break;
    }
    case PROP_MODE: s.mode = static_cast<FeatureMode>(g_value_get_enum(value)); break;
    case PROP_CONTEXT: s.context = g_value_get_double(value); break;
    case PROP_LOOKAHEAD: s.lookahead = g_value_get_double(value); break;
    case PROP_CUDA_DEVICE_ID: s.cuda_device_id = g_value_get_int(value); break;
    case PROP_IDLE_TIMEOUT: s.idle_timeout = g_value_get_double(value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
  }
}

static void gst_la_audio_feat_get_property(GObject* object, guint id, GValue* value, GParamSpec* pspec) {
  State* st = LA_AUDIO_FEAT(object)->st;
  std::lock_guard<std::mutex> g(st->lock);
  const Settings& s = st->settings;
  switch (id) {
    case PROP_MODEL_DIR: g_value_set_string(value, s.model_dir.empty() ? nullptr : s.model_dir.c_str()); break;
    case PROP_MODE: g_value_set_enum(value, static_cast<gint>(s.mode)); break;
    case PROP_CONTEXT: g_value_set_double(value, s.context); break;
    case PROP_LOOKAHEAD: g_value_set_double(value, s.lookahead); break;
    case PROP_CUDA_DEVICE_ID: g_value_set_int(value, s.cuda_device_id); break;
    case PROP_IDLE_TIMEOUT: g_value_set_double(value, s.idle_timeout); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
  }
}

static void gst_la_audio_feat_finalize(GObject* object) {
  delete LA_AUDIO_FEAT(object)->st;
  G_OBJECT_CLASS(gst_la_audio_feat_parent_class)->finalize(object);
}

static void gst_la_audio_feat_class_init(GstLaAudioFeatClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_la_audio_feat_set_property;
  gobject_class->get_property = gst_la_audio_feat_get_property;
  gobject_class->finalize = gst_la_audio_feat_finalize;
  GstLaStageElementClass* stage_class = GST_LA_STAGE_ELEMENT_CLASS(klass);
  stage_class->open = load_models;
  stage_class->start = start_stream;
  stage_class->stop = stop_stream;
  stage_class->close = release_models;

  // model-dir and cuda-device-id are read when the element goes NULL->READY,
  // the others at READY->PAUSED.
  // Both kinds are changeable only in NULL or READY (gst-inspect-1.0 says so; a change while
  // running posts a warning, gst/property_state.h).
  const auto load_flags =
      static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY);
  const auto stream_flags = load_flags;
  g_object_class_install_property(
      gobject_class, PROP_MODEL_DIR,
      g_param_spec_string("model-dir", "wav2vec2 directory",
                          "The HF wav2vec2 directory (config.json, model.safetensors), e.g. "
                          "<checkpoint-dir>/wav2vec2-large-xlsr-53-english. Loaded at NULL->READY, shared with "
                          "other elements using the same one",
                          nullptr, load_flags));
  g_object_class_install_property(
      gobject_class, PROP_MODE,
      g_param_spec_enum("mode", "Mode",
                        "streaming: one block per 0.48 s from a bounded window (live); offline: the reference's "
                        "numerics over the whole utterance, emitted when it ends (EOS, new segment, DISCONT)",
                        mode_get_type(), static_cast<gint>(FeatureMode::kStreaming), stream_flags));
  g_object_class_install_property(
      gobject_class, PROP_CONTEXT,
      g_param_spec_double("context", "Context (s)",
                          "streaming: seconds of audio before each block that wav2vec2 sees (rounded to 20 ms)", 0.0,
                          60.0, kDefaultContext, stream_flags));
  g_object_class_install_property(
      gobject_class, PROP_LOOKAHEAD,
      g_param_spec_double("lookahead", "Lookahead (s)",
                          "streaming: seconds of audio after each block that wav2vec2 waits for and sees (rounded to "
                          "20 ms); adds to the latency (0.48 s + lookahead)",
                          0.0, 10.0, kDefaultLookahead, stream_flags));
  g_object_class_install_property(
      gobject_class, PROP_CUDA_DEVICE_ID,
      g_param_spec_int("cuda-device-id", "CUDA device id",
                       "CUDA device to run wav2vec2 on (bf16), -1 for the CPU (fp32); a device that does not exist "
                       "fails the NULL->READY change",
                       -1, 1023, -1, load_flags));

  g_object_class_install_property(
      gobject_class, PROP_IDLE_TIMEOUT,
      g_param_spec_double("idle-timeout", "Idle timeout (s)",
                          "streaming, live sources: when no audio has come for this long past what upstream may still "
                          "deliver (its latency), silence is added so the video goes on; adds to the latency; 0 "
                          "turns the idle filler off (the video then stops while the source sends nothing)",
                          0.0, 60.0, kDefaultIdleTimeout, stream_flags));

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "LiveAvatar audio features", "Filter/Analyzer/Audio",
      "16 kHz mono audio to wav2vec2 feature blocks (one per 0.48 s, 12 video frames) for liveavatargen",
      "the gst-liveavatar developers");
  gst_type_mark_as_plugin_api(mode_get_type(), static_cast<GstPluginAPIFlags>(0));
  GST_DEBUG_CATEGORY_INIT(gst_la_audio_feat_debug, "laaudiofeat", 0, "LiveAvatar audio features");
}

static void gst_la_audio_feat_init(GstLaAudioFeat* self) {
  self->st = new State(*self->parent.stage);
  gst_segment_init(&self->st->segment, GST_FORMAT_TIME);
  gst_pad_set_chain_function(self->parent.sinkpad, chain);
  gst_pad_set_event_function(self->parent.sinkpad, sink_event);
  gst_pad_set_query_function(self->parent.srcpad, src_query);
}

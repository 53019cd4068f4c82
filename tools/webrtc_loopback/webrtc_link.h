// Two webrtcbins in one process, connected without a signalling server: the
// sender's SDP offer, the receiver's answer and both sides' ICE candidates are
// handed over directly (on-negotiation-needed, create-offer,
// set-local-description, set-remote-description, create-answer,
// on-ice-candidate, add-ice-candidate). ICE gathers on 127.0.0.1 only (the ICE
// agent's add-local-ip-address; no STUN, no TURN, no ICE-TCP), so the media
// never leaves the machine. Used by la-webrtc-loopback
// (examples/live-webrtc.sh) and tests/gst/test_live_outputs.cpp.
// Needs gstreamer-webrtc-1.0 and gstreamer-sdp-1.0; at run time webrtcbin
// (gst-plugins-bad) and its ICE agent (gstreamer1.0-nice).
#pragma once

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#ifndef GST_USE_UNSTABLE_API
#define GST_USE_UNSTABLE_API  // gst/webrtc's headers warn without it
#endif
#include <gst/webrtc/webrtc.h>

#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace la::webrtc {

// The address of an ICE candidate line ("candidate:1 1 UDP 2015363327
// 127.0.0.1 38095 typ host"): its fifth field.
inline std::string candidate_address(const std::string& candidate) {
  std::istringstream in(candidate);
  std::string field;
  for (int i = 0; i < 5 && (in >> field); ++i) {
  }
  return field;
}

// Connects `sender` (whose sink pads carry RTP, send-only) to `receiver`
// (receive-only). Construct it after the webrtcbins' pads are requested
// (parse-launch has linked them) and before the pipelines go to PLAYING; it
// must outlive both pipelines' run (their signals point at it).
// It holds a reference to both elements.
class Link {
 public:
  Link(GstElement* sender, GstElement* receiver)
      : sender_(GST_ELEMENT(gst_object_ref(sender))), receiver_(GST_ELEMENT(gst_object_ref(receiver))) {
    if (!restrict_to_loopback(sender_) || !restrict_to_loopback(receiver_))
      fail("the ICE agent cannot be kept to 127.0.0.1 (no add-local-ip-address: GStreamer < 1.22?)");
    // The sender only sends: its transceivers (one per requested sink pad) are
    // made send-only, so the answer is receive-only.
    GArray* transceivers = nullptr;
    g_signal_emit_by_name(sender_, "get-transceivers", &transceivers);
    if (transceivers) {
      for (guint i = 0; i < transceivers->len; ++i)
        g_object_set(g_array_index(transceivers, GstWebRTCRTPTransceiver*, i), "direction",
                     GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, nullptr);
      g_array_unref(transceivers);
    }
    // EOS stays out of webrtcbin: it posts no EOS of its own, and with one
    // bundled transport the first stream's EOS ends the transport, so the rest
    // of a stream still on its way (the avatar's video is 1-2 s behind the
    // audio) would be lost (in a run here 86 of 108 frames got through). The
    // link drops EOS at the sender's sink pads and posts kEosMessage on the
    // sender's bus once every one has had it; stop the sender then (NULL).
    // And the media waits at those pads until both ends are connected (ICE
    // and DTLS): webrtcbin sends what comes after the negotiation at once, and
    // what goes out before the DTLS keys are in place is lost (a run here lost
    // the first 17 frames, the first key frame among them). The negotiation
    // needs only the caps, which pass (the block holds buffers).
    GstIterator* it = gst_element_iterate_sink_pads(sender_);
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      GstPad* pad = GST_PAD(g_value_get_object(&item));
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_sink_event, this, nullptr);
      const gulong block = gst_pad_add_probe(
          pad,
          static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BLOCK | GST_PAD_PROBE_TYPE_BUFFER |
                                       GST_PAD_PROBE_TYPE_BUFFER_LIST),
          [](GstPad*, GstPadProbeInfo*, gpointer) { return GST_PAD_PROBE_OK; }, nullptr, nullptr);
      blocks_.push_back({GST_PAD(gst_object_ref(pad)), block});
      ++sink_pads_;
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
    handlers_.push_back(
        {sender_, g_signal_connect(sender_, "on-negotiation-needed", G_CALLBACK(on_negotiation_needed), this)});
    handlers_.push_back(
        {sender_, g_signal_connect(sender_, "on-ice-candidate", G_CALLBACK(on_sender_candidate), this)});
    handlers_.push_back(
        {receiver_, g_signal_connect(receiver_, "on-ice-candidate", G_CALLBACK(on_receiver_candidate), this)});
    for (GstElement* e : {sender_, receiver_})
      handlers_.push_back({e, g_signal_connect(e, "notify::connection-state", G_CALLBACK(on_connection_state), this)});
  }
  ~Link() {
    for (const auto& [element, id] : handlers_) g_signal_handler_disconnect(element, id);
    release();
    gst_object_unref(sender_);
    gst_object_unref(receiver_);
  }
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  // Every ICE candidate either side gathered so far ("sender: candidate:…").
  std::vector<std::string> candidates() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return candidates_;
  }
  // The first thing that went wrong in the negotiation, or "".
  std::string error() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return error_;
  }
  // True once both ends are connected (ICE and DTLS) and the media flows.
  bool connected() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return connected_;
  }
  // True once the receiver has the sender's offer and the sender the answer.
  bool negotiated() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return answered_;
  }
  // The name of the application message posted (from the sender's webrtcbin)
  // when all its streams have ended.
  static constexpr const char* kEosMessage = "la-webrtc-sender-eos";
  // The number of the sender's sink pads (streams) the link watches.
  int streams() const { return sink_pads_; }

  // The SDP offer and answer, as text (for logs).
  std::string offer_sdp() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return offer_sdp_;
  }
  std::string answer_sdp() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return answer_sdp_;
  }

  // The ICE agent gathers on these addresses only: 127.0.0.1, UDP. Returns
  // false when the agent has no add-local-ip-address (GStreamer < 1.22).
  static bool restrict_to_loopback(GstElement* webrtcbin) {
    GObject* ice = nullptr;
    g_object_get(webrtcbin, "ice-agent", &ice, nullptr);
    if (!ice) return false;
    gboolean added = FALSE;
    if (g_signal_lookup("add-local-ip-address", G_OBJECT_TYPE(ice)))
      g_signal_emit_by_name(ice, "add-local-ip-address", "127.0.0.1", &added);
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "ice-tcp")) g_object_set(ice, "ice-tcp", FALSE, nullptr);
    g_object_unref(ice);
    return added;
  }

 private:
  void fail(const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_.empty()) error_ = what;
  }

  // A promise's reply: the session description in `field`, or why not.
  GstWebRTCSessionDescription* description(GstPromise* promise, const char* field) {
    GstWebRTCSessionDescription* desc = nullptr;
    if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) {
      fail(std::string("no ") + field + " (the promise was not answered)");
      return nullptr;
    }
    const GstStructure* reply = gst_promise_get_reply(promise);
    GError* err = nullptr;
    if (reply && gst_structure_get(reply, "error", G_TYPE_ERROR, &err, nullptr)) {
      fail(std::string("creating the ") + field + " failed: " + (err ? err->message : "?"));
      g_clear_error(&err);
      return nullptr;
    }
    if (!reply || !gst_structure_get(reply, field, GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr) || !desc)
      fail(std::string("no ") + field + " in the reply");
    return desc;
  }

  static std::string sdp_text(const GstWebRTCSessionDescription* desc) {
    gchar* text = gst_sdp_message_as_text(desc->sdp);
    std::string s = text ? text : "";
    g_free(text);
    return s;
  }

  static void set_description(GstElement* webrtcbin, const char* signal, GstWebRTCSessionDescription* desc) {
    GstPromise* promise = gst_promise_new();
    g_signal_emit_by_name(webrtcbin, signal, desc, promise);
    gst_promise_unref(promise);  // webrtcbin applies it in order with what follows
  }

  static void on_negotiation_needed(GstElement* sender, gpointer self) {
    GstPromise* promise = gst_promise_new_with_change_func(on_offer_created, self, nullptr);
    g_signal_emit_by_name(sender, "create-offer", nullptr, promise);
  }

  static void on_offer_created(GstPromise* promise, gpointer data) {
    auto* self = static_cast<Link*>(data);
    GstWebRTCSessionDescription* offer = self->description(promise, "offer");
    gst_promise_unref(promise);
    if (!offer) return;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      self->offer_sdp_ = sdp_text(offer);
    }
    set_description(self->sender_, "set-local-description", offer);
    set_description(self->receiver_, "set-remote-description", offer);
    gst_webrtc_session_description_free(offer);
    GstPromise* answer = gst_promise_new_with_change_func(on_answer_created, self, nullptr);
    g_signal_emit_by_name(self->receiver_, "create-answer", nullptr, answer);
  }

  static void on_answer_created(GstPromise* promise, gpointer data) {
    auto* self = static_cast<Link*>(data);
    GstWebRTCSessionDescription* answer = self->description(promise, "answer");
    gst_promise_unref(promise);
    if (!answer) return;
    set_description(self->receiver_, "set-local-description", answer);
    set_description(self->sender_, "set-remote-description", answer);
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      self->answer_sdp_ = sdp_text(answer);
      self->answered_ = true;
    }
    gst_webrtc_session_description_free(answer);
  }

  // Lets the media through (removes the blocks).
  void release() {
    std::vector<std::pair<GstPad*, gulong>> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(blocks_);
    }
    for (const auto& [pad, id] : blocks) {
      gst_pad_remove_probe(pad, id);
      gst_object_unref(pad);
    }
  }
  static void on_connection_state(GstElement*, GParamSpec*, gpointer data) {
    auto* self = static_cast<Link*>(data);
    GstWebRTCPeerConnectionState sender = GST_WEBRTC_PEER_CONNECTION_STATE_NEW, receiver = sender;
    g_object_get(self->sender_, "connection-state", &sender, nullptr);
    g_object_get(self->receiver_, "connection-state", &receiver, nullptr);
    if (sender == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || receiver == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED)
      self->fail(std::string("the connection failed (") +
                 (sender == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED ? "sender" : "receiver") + ")");
    if (sender != GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED || receiver != GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED)
      return;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      if (self->connected_) return;
      self->connected_ = true;
    }
    self->release();
  }

  // A stream's EOS: dropped, counted once per pad.
  static GstPadProbeReturn on_sink_event(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<Link*>(data);
    if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) != GST_EVENT_EOS) return GST_PAD_PROBE_OK;
    bool all = false;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      all = self->eos_pads_.insert(pad).second && static_cast<int>(self->eos_pads_.size()) == self->sink_pads_;
    }
    if (all)
      gst_element_post_message(
          self->sender_, gst_message_new_application(GST_OBJECT(self->sender_), gst_structure_new_empty(kEosMessage)));
    return GST_PAD_PROBE_DROP;
  }

  // A candidate one side gathered goes to the other (webrtcbin holds those
  // that come before its remote description).
  void candidate(const char* side, GstElement* peer, guint mline, const gchar* candidate) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      candidates_.push_back(std::string(side) + ": " + candidate);
    }
    g_signal_emit_by_name(peer, "add-ice-candidate", mline, candidate);
  }
  static void on_sender_candidate(GstElement*, guint mline, gchar* candidate, gpointer self) {
    auto* link = static_cast<Link*>(self);
    link->candidate("sender", link->receiver_, mline, candidate);
  }
  static void on_receiver_candidate(GstElement*, guint mline, gchar* candidate, gpointer self) {
    auto* link = static_cast<Link*>(self);
    link->candidate("receiver", link->sender_, mline, candidate);
  }

  GstElement* sender_;
  GstElement* receiver_;
  std::vector<std::pair<GstElement*, gulong>> handlers_;
  mutable std::mutex mutex_;
  std::vector<std::string> candidates_;
  std::string error_, offer_sdp_, answer_sdp_;
  bool answered_ = false;
  int sink_pads_ = 0;
  bool connected_ = false;
  std::vector<std::pair<GstPad*, gulong>> blocks_;
  std::set<GstPad*> eos_pads_;
};

// Decodes what `receiver` (a webrtcbin in `pipeline`) gets: each new source
// pad (an RTP stream) is linked to a branch made from `video` or `audio`
// (launch-line fragments, from the depayloader on; e.g. "rtph264depay !
// h264parse ! openh264dec name=decoded ! autovideosink") by its caps' media.
// The buffers leaving an element named "decoded" in a branch are counted.
// Connect it before PLAYING; it must outlive the pipeline's run.
struct Branches {
  std::string video, audio;
  std::mutex mutex;
  std::vector<std::string> errors;  // pads that could not be linked, and why
  int linked = 0;
  int decoded_video = 0, decoded_audio = 0;  // buffers out of "decoded"

  void connect(GstElement* receiver, GstElement* pipeline) {
    pipeline_ = pipeline;
    g_signal_connect(receiver, "pad-added", G_CALLBACK(on_pad_added), this);
  }

 private:
  void fail(const std::string& why) {
    std::lock_guard<std::mutex> lock(mutex);
    errors.push_back(why);
  }
  static void on_pad_added(GstElement*, GstPad* pad, gpointer data) {
    auto* self = static_cast<Branches*>(data);
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const gchar* media = gst_structure_get_string(gst_caps_get_structure(caps, 0), "media");
    const std::string kind = media ? media : "";
    gst_caps_unref(caps);
    const std::string& description = kind == "video" ? self->video : kind == "audio" ? self->audio : std::string();
    if (description.empty()) {
      self->fail("a " + (kind.empty() ? std::string("?") : kind) + " stream with no branch for it");
      return;
    }
    GError* err = nullptr;
    GstElement* bin = gst_parse_bin_from_description(description.c_str(), TRUE, &err);
    if (!bin || err) {
      self->fail(kind + " branch \"" + description + "\": " + (err ? err->message : "does not parse"));
      g_clear_error(&err);
      if (bin) gst_object_unref(bin);
      return;
    }
    gst_bin_add(GST_BIN(self->pipeline_), bin);
    GstPad* sink = gst_element_get_static_pad(bin, "sink");
    const GstPadLinkReturn linked = gst_pad_link(pad, sink);
    gst_object_unref(sink);
    if (linked != GST_PAD_LINK_OK) {
      self->fail(kind + " branch: cannot link (" + gst_pad_link_get_name(linked) + ")");
      return;
    }
    if (GstElement* decoded = gst_bin_get_by_name(GST_BIN(bin), "decoded")) {
      GstPad* src = gst_element_get_static_pad(decoded, "src");
      gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER, kind == "video" ? count_video : count_audio, self, nullptr);
      gst_object_unref(src);
      gst_object_unref(decoded);
    }
    gst_element_sync_state_with_parent(bin);
    std::lock_guard<std::mutex> lock(self->mutex);
    ++self->linked;
  }
  static GstPadProbeReturn count_video(GstPad*, GstPadProbeInfo*, gpointer data) {
    auto* self = static_cast<Branches*>(data);
    std::lock_guard<std::mutex> lock(self->mutex);
    ++self->decoded_video;
    return GST_PAD_PROBE_OK;
  }
  static GstPadProbeReturn count_audio(GstPad*, GstPadProbeInfo*, gpointer data) {
    auto* self = static_cast<Branches*>(data);
    std::lock_guard<std::mutex> lock(self->mutex);
    ++self->decoded_audio;
    return GST_PAD_PROBE_OK;
  }
  GstElement* pipeline_ = nullptr;
};

}  // namespace la::webrtc

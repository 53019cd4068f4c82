// Launch-line pieces the live tools share (la-rtsp-server, la-webrtc-loopback):
// the live source, and liveavatarbin's H.264 video beside the same audio in
// Opus, each payloaded for RTP, as in examples/live-*.sh.
#pragma once

#include <string>

#include "tools/common/args.h"

namespace la::tools {

// `s` in double quotes for a launch line ("a b" stays one value).
inline std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

// A WAV played in real time (identity sync=true), or a live 220 Hz tone in
// 0.1 s buffers that ends (EOS) after `seconds` (0: never).
inline std::string live_audio_source(const std::string& wav, double seconds) {
  if (!wav.empty())
    return "filesrc location=" + quoted(wav) + " ! wavparse ! audioconvert ! audioresample ! identity sync=true";
  std::string src = "audiotestsrc is-live=true wave=sine freq=220 samplesperbuffer=1600";
  if (seconds > 0) src += " num-buffers=" + std::to_string(static_cast<long>(seconds * 10 + 0.5));
  return src;
}

struct AvatarSettings {
  std::string checkpoint_dir, lora, image, size = "720*400", prompt = "A person talking to the camera";
};

// Takes the flag `args` is on when it is --checkpoint-dir, --lora, --image,
// --size or --prompt (with its value); false for any other.
inline bool take_avatar_flag(Args& args, AvatarSettings& a) {
  const std::string& f = args.flag();
  std::string* field = f == "--checkpoint-dir" ? &a.checkpoint_dir
                       : f == "--lora"         ? &a.lora
                       : f == "--image"        ? &a.image
                       : f == "--size"         ? &a.size
                       : f == "--prompt"       ? &a.prompt
                                               : nullptr;
  if (field) *field = args.value();
  return field != nullptr;
}

// liveavatarbin with these settings, for a launch line (an empty lora or
// prompt is left to the element's default).
inline std::string liveavatarbin_element(const AvatarSettings& a) {
  return "liveavatarbin checkpoint-dir=" + quoted(a.checkpoint_dir) + (a.lora.empty() ? "" : " lora=" + quoted(a.lora)) +
         " image=" + quoted(a.image) + " size=" + quoted(a.size) +
         (a.prompt.empty() ? "" : " prompt=" + quoted(a.prompt));
}

// `source` at 16 kHz mono split by a tee: liveavatarbin into H.264 and
// rtph264pay (pt 96), then `video_end`; the audio behind a queue of up to 5 s
// (the video branch needs its latency of audio ahead before it emits a block)
// into Opus at 48 kHz and rtpopuspay (pt 97), then `audio_end`. The ends go
// on the payloaders' descriptions: " name=pay0", or " ! queue ! send.".
inline std::string avatar_rtp_branches(const std::string& source, const AvatarSettings& a,
                                       const std::string& video_end, const std::string& audio_end) {
  return source + " ! audio/x-raw,rate=16000,channels=1 ! tee name=t "
         "t. ! queue ! " + liveavatarbin_element(a) + " ! videoconvert ! openh264enc ! h264parse ! rtph264pay pt=96 config-interval=-1" + video_end +
         " t. ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0 ! audioconvert ! audioresample ! "
         "audio/x-raw,rate=48000 ! opusenc ! rtpopuspay pt=97" + audio_end;
}

}  // namespace la::tools

#!/usr/bin/env bash
# The avatar over WebRTC, sender and receiver in one program
# (la-webrtc-loopback, tools/webrtc_loopback): a live source through
# liveavatarbin, H.264 video and Opus audio into a webrtcbin, received by a
# second webrtcbin that decodes and plays it, until the source ends or Ctrl-C.
#
#   examples/live-webrtc.sh CHECKPOINT_DIR LORA IMAGE [SPEECH.wav] [SIZE] [PROMPT]
#
# The offer/answer and the ICE candidates are handed over inside the program
# (no signalling server, no STUN/TURN; ICE on 127.0.0.1 only): it shows the
# WebRTC path end to end (docs/live-streaming.md). Without SPEECH.wav the
# source is a live test tone (LA_SECONDS=S ends it after S seconds); with it,
# the WAV is played in real time, like a microphone. The receiver plays with
# autovideosink and autoaudiosink; VIDEO_SINK / AUDIO_SINK replace them (e.g.
# fakesink on a machine without a display or sound). CHECKPOINT_DIR is the
# Wan2.2-S2V-14B directory, LORA liveavatar.safetensors (docs/checkpoints.md).
# The plugin must be on GST_PLUGIN_PATH (a build tree:
# GST_PLUGIN_PATH=build/elements); la-webrtc-loopback is taken from
# LA_WEBRTC_LOOPBACK, else build/tools/, else PATH. Needs gstreamer1.0-nice.
set -euo pipefail
if (($# < 3)); then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
ckpt="$1" lora="$2" image="$3" wav="${4:-}" size="${5:-720*400}" prompt="${6:-A person talking to the camera}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tool="${LA_WEBRTC_LOOPBACK:-}"
if [[ -z "$tool" ]]; then
  if [[ -x "$here/../build/tools/la-webrtc-loopback" ]]; then
    tool="$here/../build/tools/la-webrtc-loopback"
  else
    tool="$(command -v la-webrtc-loopback || true)"
  fi
fi
if [[ -z "$tool" ]]; then
  echo "live-webrtc.sh: no la-webrtc-loopback (build it, or set LA_WEBRTC_LOOPBACK)" >&2
  exit 1
fi
source=()
if [[ -n "$wav" ]]; then
  source=(--wav "$wav")
elif [[ -n "${LA_SECONDS:-}" ]]; then
  source=(--seconds "$LA_SECONDS")
fi
exec "$tool" --checkpoint-dir "$ckpt" --lora "$lora" --image "$image" --size "$size" --prompt "$prompt" \
  "${source[@]}" --video-sink "${VIDEO_SINK:-autovideosink}" --audio-sink "${AUDIO_SINK:-autoaudiosink}"

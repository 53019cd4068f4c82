#!/usr/bin/env bash
# A live source through liveavatarbin to an RTMP server: the avatar's H.264
# video and the audio (MP3 at 44.1 kHz, what FLV carries) in FLV, published
# with rtmp2sink, until the source ends or Ctrl-C.
#
#   examples/live-rtmp.sh CHECKPOINT_DIR LORA IMAGE RTMP_URL [SPEECH.wav] [SIZE] [PROMPT]
#
# RTMP_URL is e.g. rtmp://127.0.0.1:1935/live/avatar (docs/live-streaming.md:
# nginx with libnginx-mod-rtmp); play it with
#   gst-play-1.0 rtmp://127.0.0.1:1935/live/avatar    (or ffplay, VLC, OBS)
# Without SPEECH.wav the source is a live test tone (audiotestsrc is-live=true);
# with it, the WAV is played in real time (identity sync=true), like a
# microphone; "text:SENTENCES" speaks them with espeak (examples/text-to-rtmp.sh).
# CHECKPOINT_DIR is the Wan2.2-S2V-14B directory, LORA
# liveavatar.safetensors (docs/checkpoints.md). The pipeline (and why its
# queues hold 5 s, and the muxer's latency MUX_LATENCY_NS defaults to 2 s) is
# examples/lib/publish-muxed.sh.
set -euo pipefail
if (($# < 4)); then
  sed -n '2,17p' "$0" >&2
  exit 2
fi
ckpt="$1" lora="$2" image="$3" url="$4" wav="${5:-}" size="${6:-720*400}" prompt="${7:-A person talking to the camera}"
exec "$(dirname "${BASH_SOURCE[0]}")/lib/publish-muxed.sh" "$ckpt" "$lora" "$image" "$wav" "$size" "$prompt" \
  flvmux name=mux streamable=true latency="${MUX_LATENCY_NS:-2000000000}" ! rtmp2sink location="$url"

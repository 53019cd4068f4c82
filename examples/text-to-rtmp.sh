#!/usr/bin/env bash
# Text to a talking avatar, live: espeak (Debian's gstreamer1.0-espeak) speaks
# TEXT in real time, liveavatarbin makes the avatar say it, and the video
# (H.264) and the speech (MP3) go to an RTMP server in FLV, through
# examples/live-rtmp.sh's pipeline.
#
#   examples/text-to-rtmp.sh CHECKPOINT_DIR LORA IMAGE RTMP_URL TEXT [SIZE] [PROMPT]
#
# e.g. examples/text-to-rtmp.sh ckpt/Wan2.2-S2V-14B ckpt/LiveAvatar/liveavatar.safetensors face.png \
#        rtmp://127.0.0.1:1935/live/avatar "Hello. I am a live avatar."
# and gst-play-1.0 rtmp://127.0.0.1:1935/live/avatar to watch it
# (docs/live-streaming.md: the RTMP server, and the SRT variant:
# examples/live-srt.sh ... "text:TEXT").
set -euo pipefail
if (($# < 5)); then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/live-rtmp.sh" "$1" "$2" "$3" "$4" "text:$5" "${6:-720*400}" "${7:-A person talking to the camera}"

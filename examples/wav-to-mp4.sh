#!/usr/bin/env bash
# A WAV file and a picture to an MP4 with the avatar's H.264 video and the
# original audio, muxed in sync (frame n of the video is at n/25 s of the audio).
#
#   examples/wav-to-mp4.sh CHECKPOINT_DIR LORA IMAGE SPEECH.wav OUT.mp4 [SIZE] [PROMPT]
#
# CHECKPOINT_DIR is the Wan2.2-S2V-14B directory, LORA liveavatar.safetensors
# (docs/checkpoints.md). SIZE is the output area W*H (default 720*400; the
# picture's aspect, at most its size rounded up to 64s). The plugin must be on
# GST_PLUGIN_PATH (a build tree: GST_PLUGIN_PATH=build/elements).
# AVATAR_PROPERTIES adds liveavatarbin properties, e.g.
#   AVATAR_PROPERTIES="cuda-device-id=0" examples/wav-to-mp4.sh ...   (a GPU)
#
# The audio branch's queue is unbounded: the video branch needs 0.48 s of
# audio ahead before it can emit a block, and mp4mux interleaves by time, so a
# bounded audio queue could stall the tee.
set -euo pipefail
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,13p' "$0"
  exit 0
fi
if (($# < 5)); then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
# Split on spaces on purpose: one property per word (values without spaces).
read -r -a extra <<<"${AVATAR_PROPERTIES:-}"
ckpt="$1" lora="$2" image="$3" wav="$4" out="$5" size="${6:-720*400}" prompt="${7:-A person talking to the camera}"
exec gst-launch-1.0 -e \
  filesrc location="$wav" ! wavparse ! tee name=audio \
  audio. ! queue ! liveavatarbin checkpoint-dir="$ckpt" lora="$lora" image="$image" size="$size" prompt="$prompt" \
    "${extra[@]}" \
    ! videoconvert ! openh264enc ! h264parse ! queue ! mux. \
  audio. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! audioconvert ! lamemp3enc ! mpegaudioparse \
    ! queue ! mux. \
  mp4mux name=mux ! filesink location="$out"

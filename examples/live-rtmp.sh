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
# liveavatar.safetensors (docs/checkpoints.md). The audio branch's queue holds
# up to 5 s: the video branch needs its latency (1-2 s) of audio ahead before
# it emits a block, so a shorter queue would stall the tee; past 5 s behind,
# backpressure reaches the source instead of memory growing.
set -euo pipefail
if (($# < 4)); then
  sed -n '2,18p' "$0" >&2
  exit 2
fi
ckpt="$1" lora="$2" image="$3" url="$4" wav="${5:-}" size="${6:-720*400}" prompt="${7:-A person talking to the camera}"
if [[ "$wav" == text:* ]]; then
  # Text to speech (Debian's gstreamer1.0-espeak), spoken in real time.
  source=(espeak text="${wav#text:}" ! audioconvert ! audioresample ! audio/x-raw,rate=16000,channels=1
          ! identity sync=true)
elif [[ -n "$wav" ]]; then
  source=(filesrc location="$wav" ! wavparse ! audioconvert ! audioresample ! identity sync=true)
else
  source=(audiotestsrc is-live=true wave=sine freq=220 ! audio/x-raw,rate=16000,channels=1)
fi
exec gst-launch-1.0 -e \
  "${source[@]}" ! tee name=audio \
  audio. ! queue ! liveavatarbin checkpoint-dir="$ckpt" lora="$lora" image="$image" size="$size" prompt="$prompt" \
    ! videoconvert ! openh264enc ! h264parse ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0 ! mux. \
  audio. ! queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0 ! audioconvert ! audioresample \
    ! audio/x-raw,rate=44100 ! lamemp3enc ! mpegaudioparse ! queue ! mux. \
  flvmux name=mux streamable=true ! rtmp2sink location="$url"

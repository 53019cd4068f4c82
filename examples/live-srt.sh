#!/usr/bin/env bash
# A live source through liveavatarbin as an SRT stream: the avatar's H.264
# video and the audio (MP3 at 44.1 kHz) in MPEG-TS, sent with srtsink, until
# the source ends or Ctrl-C.
#
#   examples/live-srt.sh CHECKPOINT_DIR LORA IMAGE SRT_URL [SPEECH.wav] [SIZE] [PROMPT]
#
# SRT_URL is e.g. srt://127.0.0.1:8888?mode=caller (send to a listener, e.g.
#   gst-play-1.0 "srt://127.0.0.1:8888?mode=listener"   or ffplay, VLC)
# or srt://:8888?mode=listener (wait for a reader to call in:
#   gst-play-1.0 "srt://127.0.0.1:8888?mode=caller")    (docs/live-streaming.md)
# Without SPEECH.wav the source is a live test tone (audiotestsrc is-live=true);
# with it, the WAV is played in real time (identity sync=true), like a
# microphone; "text:SENTENCES" speaks them with espeak (examples/text-to-rtmp.sh).
# CHECKPOINT_DIR is the Wan2.2-S2V-14B directory, LORA
# liveavatar.safetensors (docs/checkpoints.md). mpegtsmux alignment=7: SRT's
# live mode sends messages of at most 1316 bytes = 7 TS packets. The pipeline
# (and the muxer's latency MUX_LATENCY_NS, default 2 s) is
# examples/lib/publish-muxed.sh.
# At the end the connection stays open until 1 s past the stream's end on the
# pipeline clock (the fakesink branch waits for each buffer's time + 1 s, and
# gst-launch-1.0 stops when every sink has had EOS): SRT's live mode drops
# what is still in flight when the caller closes, and the listener lost the
# last 3 frames of 60 without it. Video that comes later than its time (an
# avatar slower than real time) shortens that; an SRT latency= above 1000 ms
# needs a longer ts-offset.
set -euo pipefail
if (($# < 4)); then
  sed -n '2,26p' "$0" >&2
  exit 2
fi
ckpt="$1" lora="$2" image="$3" url="$4" wav="${5:-}" size="${6:-720*400}" prompt="${7:-A person talking to the camera}"
exec "$(dirname "${BASH_SOURCE[0]}")/lib/publish-muxed.sh" "$ckpt" "$lora" "$image" "$wav" "$size" "$prompt" \
  mpegtsmux name=mux alignment=7 latency="${MUX_LATENCY_NS:-2000000000}" ! tee name=ts \
  ts. ! queue ! srtsink uri="$url" \
  ts. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! fakesink sync=true ts-offset=1000000000

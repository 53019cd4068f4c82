#!/usr/bin/env bash
# The publisher shared by examples/live-rtmp.sh and examples/live-srt.sh: a
# live source through liveavatarbin into H.264, the same audio into MP3 at
# 44.1 kHz, both into the muxer named "mux" that MUX_AND_SINK (gst-launch
# words) sets up with its sink, until the source ends or Ctrl-C.
#
#   examples/lib/publish-muxed.sh CHECKPOINT_DIR LORA IMAGE SPEECH SIZE PROMPT MUX_AND_SINK...
#
# SPEECH: "" for a live test tone, a WAV played in real time, or
# "text:SENTENCES" spoken by espeak (Debian's gstreamer1.0-espeak) in real
# time. Both branches' queues before the muxer hold up to 5 s: the video needs
# its latency of audio ahead before it emits a block, and a live muxer holds
# what comes early for the pipeline's latency while it waits for the other
# branch (no audio at all while the source is idle); past 5 s behind,
# backpressure reaches the source instead of memory growing.
#
# The muxer gets 2 s of latency of its own (MUX_LATENCY_NS, in the callers'
# MUX_AND_SINK). A live muxer waits for each position only as long as the
# pipeline's latency, and the avatar's elements can report their processing
# time only once they have timed a block: for the first block the latency
# covers the audio's block and lookahead, not the generation. Without the
# extra latency flvmux wrote the audio ahead and gave the first video frames
# of a 2 s WAV the timestamps of audio already written (first frame at 78 to
# 156 ms instead of 0, in 5 of 6 runs with the tiny model on this CPU); with
# 1 s, 6 of 6 were right, and the default of 2 s leaves room. The 14B model
# on one GPU needs about 4 s (docs/live-streaming.md). The viewer waits that
# much longer.
set -euo pipefail
ckpt="$1" lora="$2" image="$3" speech="$4" size="$5" prompt="$6"
shift 6
if [[ "$speech" == text:* ]]; then
  source=(espeak text="${speech#text:}" ! audioconvert ! audioresample ! audio/x-raw,rate=16000,channels=1
          ! identity sync=true)
elif [[ -n "$speech" ]]; then
  source=(filesrc location="$speech" ! wavparse ! audioconvert ! audioresample ! identity sync=true)
else
  source=(audiotestsrc is-live=true wave=sine freq=220 ! audio/x-raw,rate=16000,channels=1)
fi
queue5s=(queue max-size-time=5000000000 max-size-buffers=0 max-size-bytes=0)
exec gst-launch-1.0 -e \
  "${source[@]}" ! tee name=audio \
  audio. ! queue ! liveavatarbin checkpoint-dir="$ckpt" lora="$lora" image="$image" size="$size" prompt="$prompt" \
    ! videoconvert ! openh264enc ! h264parse ! "${queue5s[@]}" ! mux. \
  audio. ! "${queue5s[@]}" ! audioconvert ! audioresample \
    ! audio/x-raw,rate=44100 ! lamemp3enc ! mpegaudioparse ! queue ! mux. \
  "$@"

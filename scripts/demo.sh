#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo pipeline end to end:
# a tiny checkpoint (seeded random weights, the real release layout) if there
# is none, a sentence spoken by espeak-ng, a test picture, then one
# gst-launch-1.0 line (examples/wav-to-mp4.sh) through liveavatarbin into an
# MP4 with H.264 video and the original audio. The tiny model's weights are
# random: the video is abstract, not a face (README: real checkpoints).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LA_BUILD_DIR:-$root/build}"
out="${LA_DEMO_DIR:-$root/demo-out}"
size="${LA_DEMO_SIZE:-256*256}"  # the CPU runs the tiny model at about 2 s per 0.48 s block at this size

"$root/scripts/deps.sh"
"$root/scripts/build.sh"

mkdir -p "$out"
if [[ ! -f "$out/ckpt/Wan2.2-S2V-14B/config.json" ]]; then
  "$build/tools/la-mkcheckpoint" --scale tiny --seed 42 --out "$out/ckpt"
fi
export GST_PLUGIN_PATH="$build/elements" GST_REGISTRY="$build/gst-registry.bin"
espeak-ng -w "$out/speech.wav" "Hello! This avatar is generated live, block by block, from the sound of my voice."
gst-launch-1.0 -q videotestsrc num-buffers=1 pattern=pinwheel ! video/x-raw,width=480,height=480 \
  ! pngenc ! filesink location="$out/face.png"

start=$(date +%s.%N)
"$root/examples/wav-to-mp4.sh" "$out/ckpt/Wan2.2-S2V-14B" "$out/ckpt/LiveAvatar/liveavatar.safetensors" \
  "$out/face.png" "$out/speech.wav" "$out/avatar.mp4" "$size" "A person talking to the camera" \
  >"$out/gst-launch.log" 2>&1 || { tail -20 "$out/gst-launch.log"; echo "demo: the pipeline failed" >&2; exit 1; }
seconds=$(echo "$(date +%s.%N) - $start" | bc)

frames=$(gst-launch-1.0 -v filesrc location="$out/avatar.mp4" ! qtdemux ! video/x-h264 ! fakesink silent=false 2>&1 \
  | grep -c "last-message = chain")
duration=$(gst-discoverer-1.0 "$out/avatar.mp4" | sed -n 's/^ *Duration: //p')
echo "demo: wrote $out/avatar.mp4"
echo "demo: $frames video frames ($size area, 25 fps) + audio, duration $duration"
echo "demo: $(echo "scale=2; $frames / $seconds" | bc) frames/s ($seconds s wall, tiny random-weight model on $(nproc) CPU cores)"

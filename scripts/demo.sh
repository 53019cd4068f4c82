#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo pipeline end to end:
# the trained miniature in models/miniature (docs/miniature.md: the real
# architectures at a small width, trained on a synthetic talking face), a
# sentence spoken by espeak-ng, then one gst-launch-1.0 line
# (examples/wav-to-mp4.sh) through liveavatarbin into an MP4 with H.264 video
# and the original audio, and the lip sync measured in that video.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LA_BUILD_DIR:-$root/build}"
out="${LA_DEMO_DIR:-$root/demo-out}"
ckpt="${LA_DEMO_CHECKPOINT:-$root/models/miniature}"
size="${LA_DEMO_SIZE:-128*128}"  # the size the miniature was trained at

"$root/scripts/deps.sh"
"$root/scripts/build.sh"

mkdir -p "$out"
export GST_PLUGIN_PATH="$build/elements" GST_REGISTRY="$build/gst-registry.bin"
espeak-ng -w "$out/speech.wav" "Hello! This avatar is generated live, block by block, from the sound of my voice."

start=$(date +%s.%N)
"$root/examples/wav-to-mp4.sh" "$ckpt/Wan2.2-S2V-14B" "$ckpt/LiveAvatar/liveavatar.safetensors" \
  "$ckpt/face.png" "$out/speech.wav" "$out/avatar.mp4" "$size" "A person talking to the camera" \
  >"$out/gst-launch.log" 2>&1 || { tail -20 "$out/gst-launch.log"; echo "demo: the pipeline failed" >&2; exit 1; }
seconds=$(echo "$(date +%s.%N) - $start" | bc)

frames=$(gst-launch-1.0 -v filesrc location="$out/avatar.mp4" ! qtdemux ! video/x-h264 ! fakesink silent=false 2>&1 \
  | grep -c "last-message = chain")
duration=$(gst-discoverer-1.0 "$out/avatar.mp4" | sed -n 's/^ *Duration: //p')
echo "demo: wrote $out/avatar.mp4"
echo "demo: $frames video frames ($size area, 25 fps) + audio, duration $duration"
echo "demo: $(echo "scale=2; $frames / $seconds" | bc) frames/s ($seconds s wall, the miniature on $(nproc) CPU cores)"
# How well the mouth follows the speech (tools/lipsync), and a strip of frames to look at.
"$build/tools/la-lipsync" --video "$out/avatar.mp4" --audio "$out/speech.wav" --strip "$out/strip.png" \
  --strip-first 25 --strip-count 12 --strip-step 2 | sed 's/^/demo: lip sync: /' 

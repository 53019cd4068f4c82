#!/bin/bash
# la-lipsync ($1) refuses inputs it cannot measure with a message naming the
# input: a WAV given as --video, a missing file, a single picture. Each must
# exit with status 1 and print the expected text.
tool="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
gst-launch-1.0 -q audiotestsrc num-buffers=20 ! audio/x-raw,rate=16000,channels=1 ! wavenc ! \
  filesink location="$dir/tone.wav" || { echo "FAIL cannot write a test WAV"; exit 1; }
gst-launch-1.0 -q videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! pngenc ! \
  filesink location="$dir/face.png" || { echo "FAIL cannot write a test PNG"; exit 1; }
failed=0
expect() {  # expect TEXT ARGS...: status 1 and TEXT in the output
  local text="$1"
  shift
  out=$("$tool" "$@" 2>&1)
  rc=$?
  if [ "$rc" -eq 1 ] && [[ "$out" == *"$text"* ]]; then
    echo "ok   $*: $text"
  else
    echo "FAIL $*: status $rc, expected 1 and '$text', got: $out"
    failed=$((failed + 1))
  fi
}
expect "--video $dir/tone.wav has no video stream" --video "$dir/tone.wav" --audio "$dir/tone.wav"
expect "No such file \"$dir/missing.mp4\"" --video "$dir/missing.mp4" --audio "$dir/tone.wav"
expect "lip sync needs at least 32 frames, got 1" --video "$dir/face.png" --audio "$dir/tone.wav"
exit $((failed > 0))

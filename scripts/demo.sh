#!/usr/bin/env bash
# Installs what is missing, builds, and runs the end-to-end demo.
# Until the GStreamer elements land, the demo is the checkpoint path end to end:
# write a tiny checkpoint in the real release layout (seeded random weights),
# then load every file of it through the engine and check it against the
# model layouts.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LA_BUILD_DIR:-$root/build}"
out="${LA_DEMO_DIR:-$root/demo-out}"

"$root/scripts/deps.sh"
"$root/scripts/build.sh"

if [[ ! -f "$out/ckpt/Wan2.2-S2V-14B/config.json" ]]; then
  "$build/tools/la-mkcheckpoint" --scale tiny --seed 42 --out "$out/ckpt"
fi
"$build/tools/la-checkpoint-info" "$out/ckpt"
echo "demo: tiny checkpoint (random weights) at $out/ckpt"

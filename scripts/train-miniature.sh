#!/usr/bin/env bash
# Regenerates models/miniature, the trained miniature of docs/miniature.md:
# la-mkcheckpoint's miniature scale (seed 42) is the starting point (its umT5,
# tokenizer and wav2vec2 are kept), la-train-miniature trains the VAE and the
# DiT on the CPU. Extra arguments go to la-train-miniature. The same options
# on the same thread count give the same weights.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LA_BUILD_DIR:-$root/build}"

"$root/scripts/deps.sh"
"$root/scripts/build.sh"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$build/tools/la-mkcheckpoint" --scale miniature --seed 42 --out "$tmp/init" >/dev/null
"$build/tools/la-train-miniature" --init "$tmp/init" --out "$tmp/miniature" --threads 2 "$@"
rm -rf "$root/models/miniature"
mkdir -p "$root/models"
mv "$tmp/miniature" "$root/models/miniature"
du -sh "$root/models/miniature"

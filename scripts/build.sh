#!/usr/bin/env bash
# Configures (once) and builds gst-liveavatar into ${LA_BUILD_DIR:-build}.
# Uses ccache when installed (meson picks it up by itself).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LA_BUILD_DIR:-$root/build}"
export PATH="${CUDA_HOME:-/usr/local/cuda}/bin:$PATH"  # nvcc
# Let ccache hit across clones in other directories (CI builds a fresh clone).
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
if [[ ! -f "$build/build.ninja" ]]; then
  meson setup "$build" "$root" -Dcudatoolkit_dir="${CUDA_HOME:-/usr/local/cuda}" ${LA_MESON_ARGS:-}
fi
# Two cores and LibTorch's headers: one compile job per core is the most that fits.
meson compile -C "$build" -j "${LA_JOBS:-$(nproc)}"

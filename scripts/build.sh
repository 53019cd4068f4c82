#!/usr/bin/env bash
# Configures (once) and builds gst-liveavatar into ${LA_BUILD_DIR:-build}.
# Uses ccache when installed (meson picks it up by itself).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LA_BUILD_DIR:-$root/build}"
# Let ccache hit across clones in other directories (CI builds a fresh clone).
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
if [[ ! -f "$build/build.ninja" ]]; then
  # The CUDA runtime and NCCL come from the torch wheel (meson_options.txt:
  # cudart_from); LA_MESON_ARGS="-Dcudart_from=toolkit -Dcudatoolkit_dir=..." uses a toolkit.
  meson setup "$build" "$root" ${LA_MESON_ARGS:-}
fi
# Two cores and LibTorch's headers: one compile job per core is the most that fits.
meson compile -C "$build" -j "${LA_JOBS:-$(nproc)}"

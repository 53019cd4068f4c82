#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite:
#  1. the main build (LibTorch, CUDA path compiled, tests on the CPU or the GPU);
#  2. a clang build of the ATen-free checkpoint parsers under ASan+UBSan, with
#     short libFuzzer runs (suite "fuzz").
# The last line is "N passed, N failed, N skipped" over both.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${LA_BUILD_DIR:-$root/build}"
asan_build="${LA_ASAN_BUILD_DIR:-$root/build-asan}"

"$root/scripts/deps.sh" || exit 1

# The main build and its tests run with any CUDA toolkit on this machine hidden
# (CUDA_HOME pointing nowhere, no nvcc on PATH): the build needs only what the
# torch wheel brings, as on a bare Debian 12 (unit-io checks which cudart loads).
export CUDA_HOME=/nonexistent/cuda-toolkit-hidden-by-test.sh CUDA_PATH=/nonexistent/cuda-toolkit-hidden-by-test.sh
export PATH="$("$root/scripts/path-without.sh" nvcc)"
if command -v nvcc >/dev/null; then echo "test.sh: nvcc still on PATH" >&2; exit 1; fi

"$root/scripts/build.sh" || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }

status=0
# Each GoogleTest binary writes its cases to BUILD/<test>.xml (protocol gtest);
# old ones must not be counted again.
rm -f "$build"/*.xml "$asan_build"/*.xml
meson test -C "$build" --print-errorlogs --num-processes 2 || status=1

if [[ ! -f "$asan_build/build.ninja" ]]; then
  CC=clang CXX=clang++ meson setup "$asan_build" "$root" -Dio_core_only=true -Dfuzzers=enabled \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || exit 1
fi
meson compile -C "$asan_build" || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
meson test -C "$asan_build" --print-errorlogs --num-processes 2 || status=1

python3 "$root/scripts/summarize-tests.py" "$build/meson-logs/testlog.json" \
  "$asan_build/meson-logs/testlog.json" || status=1
exit $status

#!/usr/bin/env bash
# Builds and tests gst-liveavatar ON A GPU MACHINE of the `device` tool (CUDA 13, PyTorch, meson,
# ninja; no GStreamer, no network), from the repo root, with the kit that scripts/gpu-kit.sh made
# here in .gpu/ (the run carries it: carry [".gpu"]).
#
#   scripts/gpu-check.sh                build into build-gpu/ (release), then every test
#   scripts/gpu-check.sh gst parity     build, then the tests of these meson suites only
#   scripts/gpu-check.sh build          build only
#   scripts/gpu-check.sh preflight      tools, CUDA/NCCL, the kit's smoke test (about 30 s)
#   scripts/gpu-check.sh demo           build, then the demo pipeline on CUDA device 0 (avatar.mp4)
#   scripts/gpu-check.sh streams        build, then the GPU checks of issue 14 (per-stage CUDA streams and
#                                       events, features on the device, nvcodec context, fp8 at load,
#                                       frame-pool fallback, offload's memory) and the GPU pipeline test
#   scripts/gpu-check.sh devices        build, then issue 12's checks: two DiT stages on GPU 0 against one
#                                       (unit-dit-pipeline: TwoStagesOnOneGpuMatchOneStage prints the
#                                       difference), the same over NCCL (unit-dit-pipeline-nccl), the
#                                       planner's and the element's multi-device tests (two-GPU ones skip
#                                       with one GPU)
#   scripts/gpu-check.sh gpu-cases      build, then streams' and devices' tests together
#   scripts/gpu-session.sh              gpu-cases, then scripts/gpu-figures.sh, inside one 600 s run
#
# Logs (and avatar.mp4, testlog.json) go to ${OUT:-/tmp}/gpu-check-*; the last line is a summary.
# Environment: LA_MESON_TEST_ARGS (more `meson test` arguments, e.g. "--no-suite lsan" or test
# names), LA_MESON_ARGS (more `meson setup` options), LA_BUILD_DIR (build-gpu), LA_JOBS (nproc),
# LA_TEST_PROCS (8), LA_DEMO_SIZE (256*256), LA_DEMO_DEVICE (0; -1: the CPU), LA_GPU_DEADLINE_S
# (570: the tests are stopped then, so that the summary and the logs come back inside the tool's
# 600 s), CUDA_HOME, NCCL_HOME.
set -euo pipefail
start=$SECONDS
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${OUT:-/tmp}"
mkdir -p "$out"
build="${LA_BUILD_DIR:-$root/build-gpu}"
deadline="${LA_GPU_DEADLINE_S:-570}"
kit="$root/.gpu"
log() { echo "gpu-check: [$((SECONDS - start))s] $*"; }
die() { echo "gpu-check: ERROR: $*" >&2; echo "gpu-check: SUMMARY: FAILED after $((SECONDS - start)) s: $*"; exit 1; }

mode="test"
tests=()
case "${1:-}" in
  build|preflight|demo) mode=$1; shift ;;
  test) shift ;;
  # Test programs (meson test names) whose GPU cases (GTEST_SKIP without a device) cover issue 14:
  #   gst-stage-element: StageElement.FailedOpenClosesTheGpuStage (the elements' base class)
  #   gst-glue: StageDevice.EachStageHasItsOwnStreamOnTheGpu, TensorMemory.ConsumerStreamWaitsForTheProducersEvent,
  #             CudaContext.ContextQueriesAnsweredOnDemandForTheConfiguredDevice, CudaFramePool.*
  #   gst-lavaedecode: LaVaeDecode.NvcodecElementStartedFirstTakesOurCudaContext, ...InNullOnlyForACudaDevice
  #   unit-audio-features: AudioFeatures.StreamingBlocksStayOnTheModelsDevice
  #   unit-io: CudaRuntimeInfo.ReleasingCachedMemoryReturnsItToTheDevice, ComputeCapabilityOfMissingDeviceIsZero
  #   unit-avatar-generator: AvatarGenerator.OffloadedTextEncoderMemoryIsReturnedToTheDevice
  #   unit-fp8: the decision at load (CPU), the device's own capability printed by unit-io
  #   gst-pipelines: Pipelines.CudaMemoryOutputOnTheGpu (three stages, three streams, events between them)
  #   gst-launch: the elements and liveavatarbin on cuda:0 in a gst-launch-1.0 process of their own
  streams) shift; tests=(gst-stage-element gst-glue gst-lavaedecode unit-audio-features unit-io unit-avatar-generator unit-fp8
                         gst-pipelines gst-launch) ;;
  # Issue 12 (several devices per stream): unit-dit-pipeline-nccl runs the NCCL hand-overs on one
  # GPU (DitPipelineNccl.HandOversOnOneGpuMatchOneStage); the *TwoGpus* cases need two GPUs.
  devices) shift; tests=(unit-dit-pipeline unit-dit-pipeline-nccl unit-memory-plan gst-dit-devices
                         gst-dit-devices-two-gpus) ;;
  # Both lists: every test program with GPU cases.
  gpu-cases) shift; tests=(gst-stage-element gst-glue gst-lavaedecode unit-audio-features unit-io unit-avatar-generator unit-fp8
                           gst-pipelines gst-launch unit-dit-pipeline unit-dit-pipeline-nccl unit-memory-plan
                           gst-dit-devices gst-dit-devices-two-gpus) ;;
  -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
suites=("$@")

[[ -f $kit/env.sh ]] || die "$kit/env.sh missing: run scripts/gpu-kit.sh on the Debian machine, and carry .gpu"
chmod -f +x "$kit"/gst/bin/* "$kit"/deps/bin/* "$kit"/deps/libexec/pkgconf "$kit"/smoke/*.sh || true
[[ $(uname -m) == x86_64 ]] || die "the kit is x86-64; this machine is $(uname -m)"
pre="$out/gpu-check-preflight.log"
: >"$pre"

# --- The machine: GPU, PyTorch (asked before the kit's libraries are on LD_LIBRARY_PATH) -------
if command -v nvidia-smi >/dev/null; then
  nvidia-smi >>"$pre" 2>&1 || true
  gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
  log "GPU: ${gpu:-nvidia-smi failed (see $pre)}"
else
  gpu="no nvidia-smi"; log "GPU: no nvidia-smi on PATH"
fi
py=$(command -v python3) || die "no python3"
torch_info=$("$py" -c 'import os, torch
print(os.path.dirname(torch.__file__), torch.__version__, torch.version.cuda, torch.cuda.is_available(),
      torch.cuda.device_count())' 2>>"$pre") || die "$py cannot import torch (see $pre)"
read -r torch_dir torch_ver torch_cuda cuda_ok ngpu <<<"$torch_info"
log "python3 $py: torch $torch_ver (CUDA $torch_cuda), cuda available: $cuda_ok, devices: $ngpu; $torch_dir"
[[ -f $torch_dir/include/ATen/ATen.h && -f $torch_dir/lib/libtorch_cpu.so ]] \
  || die "$torch_dir has no LibTorch headers/libraries (include/ATen/ATen.h, lib/libtorch_cpu.so)"
[[ $cuda_ok == True ]] || log "WARNING: torch sees no CUDA device: GPU tests will skip"

# --- CUDA runtime and NCCL -----------------------------------------------------------------
# As on every machine: the ones PyTorch's own wheel brought (nvidia/cu*/ and nvidia/nccl/ beside
# torch), so the engine and libtorch_cuda share one cudart. A toolkit only when PyTorch has none.
mapfile -t found < <("$py" "$root/scripts/find-torch.py" "$torch_dir" 2>>"$pre") || true
if [[ -n ${found[4]:-} && -n ${found[6]:-} ]]; then
  cuda_args=(-Dcudart_from=wheel)
  # Its CUDA headers include crt/host_config.h and nv/target, shipped apart (nvidia-cuda-crt,
  # nvidia-cuda-cccl): the kit carries both, installed here beside torch when missing.
  wheel_inc="$(dirname "$(dirname "${found[4]}")")/include"
  have=$(ls -d "$torch_dir"/../nvidia_cuda_runtime-*.dist-info 2>/dev/null \
    | sed -n 's/.*nvidia_cuda_runtime-\([0-9]*\.[0-9]*\)\..*/\1/p' | head -1)
  for pair in crt/host_config.h:nvidia_cuda_crt nv/target:nvidia_cuda_cccl; do
    [[ -f $wheel_inc/${pair%%:*} ]] && continue
    wheel=$(ls "$kit"/wheels/"${pair#*:}"-"$have".*.whl 2>/dev/null | head -1)
    [[ -n $have && -n $wheel ]] || die "$wheel_inc/${pair%%:*} missing and the kit has no ${pair#*:} $have wheel"
    "$py" -m pip install -q --no-deps --no-index --disable-pip-version-check "$wheel" >>"$pre" 2>&1 \
      || die "pip install $wheel beside $torch_dir failed (see $pre)"
    log "installed $(basename "$wheel") (${pair%%:*}) beside torch"
  done
  cuda_inc="$(dirname "$(dirname "${found[4]}")")/include"  # the smoke test includes CUDA headers
  log "CUDA runtime ${found[4]} and NCCL ${found[6]}: PyTorch's own (-Dcudart_from=wheel)"
else
# CUDA toolkit and NCCL ------------------------------------------------------------------
nvcc_path=$(command -v nvcc || true)
cuda=""
for c in "${CUDA_HOME:-}" "${CUDA_PATH:-}" ${nvcc_path:+"$(dirname "$(dirname "$nvcc_path")")"} \
         ${nvcc_path:+"$(dirname "$(dirname "$(readlink -f "$nvcc_path")")")"} /usr/local/cuda \
         /usr/local/cuda-13* /opt/cuda /opt/nvidia/cuda "$torch_dir/../nvidia/cu13"; do
  [[ -n $c && -d $c ]] || continue
  for i in "$c/include" "$c/targets/x86_64-linux/include"; do
    [[ -f $i/cuda_runtime_api.h ]] && { cuda=$(cd "$c" && pwd); cuda_inc=$i; break 2; }
  done
done
[[ -n $cuda ]] || die "no CUDA toolkit: nvcc with include/cuda_runtime_api.h found neither on PATH nor in
  /usr/local/cuda, /usr/local/cuda-13*, /opt/cuda (set CUDA_HOME)"
cuda_lib=""
for l in "$cuda/lib64" "$cuda/lib" "$cuda/targets/x86_64-linux/lib"; do
  compgen -G "$l/libcudart.so*" >/dev/null && { cuda_lib=$l; break; }
done
[[ -n $cuda_lib ]] || die "no libcudart.so* under $cuda/{lib64,lib,targets/x86_64-linux/lib}"
log "CUDA toolkit: $cuda, headers $cuda_inc, libraries $cuda_lib"

nccl_inc="" nccl_lib=""
for n in "${NCCL_HOME:-}" "$cuda" "$torch_dir/../nvidia/nccl" /usr /usr/local \
         $("$py" -c 'import importlib.util as u; s = u.find_spec("nvidia.nccl"); print(" ".join(s.submodule_search_locations or []) if s else "")' 2>/dev/null || true); do
  [[ -n $n ]] || continue
  for i in "$n/include" "$n/targets/x86_64-linux/include"; do
    [[ -f $i/nccl.h ]] || continue
    for l in "$n/lib64" "$n/lib" "$n/lib/x86_64-linux-gnu" "$n/targets/x86_64-linux/lib"; do
      compgen -G "$l/libnccl.so*" >/dev/null && { nccl_inc=$i; nccl_lib=$l; break 3; }
    done
  done
done
[[ -n $nccl_inc ]] || die "no NCCL (nccl.h with libnccl.so*) in the toolkit, NCCL_HOME, /usr or the nvidia-nccl pip package"
log "NCCL: $nccl_inc/nccl.h ($(sed -n 's/^#define NCCL_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\).*/\2/p' "$nccl_inc/nccl.h" | paste -sd.)), $nccl_lib"

# meson.build wants one folder with include/{cuda_runtime_api.h,nccl.h} and lib64/{libcudart,libnccl}.so.
if [[ $cuda_inc == "$cuda/include" && $nccl_inc == "$cuda_inc" && -e $cuda/lib64/libcudart.so && -e $cuda/lib64/libnccl.so ]]; then
  cudadir=$cuda
else  # assembled from symlinks: the toolkit's headers and libraries, NCCL's beside them
  cudadir=/tmp/la-cuda
  rm -rf "$cudadir"; mkdir -p "$cudadir/include" "$cudadir/lib64"
  ln -s "$cuda_inc"/* "$cudadir/include/"
  ln -s "$cuda_lib"/* "$cudadir/lib64/"
  for f in "$nccl_inc"/nccl*; do ln -sfn "$(readlink -f "$f")" "$cudadir/include/$(basename "$f")"; done
  for f in "$nccl_lib"/libnccl*.so*; do ln -sfn "$(readlink -f "$f")" "$cudadir/lib64/$(basename "$f")"; done
  for l in cudart nccl; do  # pip wheels ship only the versioned names
    [[ -e $cudadir/lib64/lib$l.so ]] && continue
    v=$(cd "$cudadir/lib64" && ls lib$l.so.* 2>/dev/null | sort -V | head -1)
    [[ -n $v ]] || die "no lib$l.so.* in $cuda_lib or $nccl_lib"
    ln -s "$v" "$cudadir/lib64/lib$l.so"
  done
fi
log "-Dcudart_from=toolkit -Dcudatoolkit_dir=$cudadir (PyTorch brought no CUDA runtime/NCCL of its own)"
cuda_args=(-Dcudart_from=toolkit -Dcudatoolkit_dir="$cudadir")

fi

# --- Compiler, glibc ------------------------------------------------------------------------
cxx=$(command -v c++ || command -v g++) || die "no C++ compiler (c++/g++) on PATH"
# meson and ninja from pip may be installed without their scripts on PATH.
pybin=$(dirname "$py")
[[ -x $pybin/meson ]] && export PATH="$PATH:$pybin"
mesonc=(meson)
if ! command -v meson >/dev/null; then
  "$py" -c 'import mesonbuild' 2>/dev/null || die "no meson on PATH, nor the mesonbuild module in $py"
  mesonc=("$py" -m mesonbuild.mesonmain)
fi
if ! command -v ninja >/dev/null; then
  nb=$("$py" -c 'import ninja, os; print(os.path.join(ninja.BIN_DIR))' 2>/dev/null || true)
  [[ -n $nb && -x $nb/ninja ]] || die "no ninja on PATH, nor the ninja module in $py"
  export PATH="$PATH:$nb"
fi
log "$($cxx --version | head -1); meson $("${mesonc[@]}" --version); ninja $(ninja --version)"
need_glibc=$(sed -n 's/^needs-glibc: //p' "$kit/MANIFEST" 2>/dev/null || true)
have_glibc=$(ldd --version 2>/dev/null | head -1 | grep -o '[0-9]\+\.[0-9]\+$' || true)
if [[ -n $need_glibc && -n $have_glibc ]] && [[ $(printf '%s\n%s\n' "$need_glibc" "$have_glibc" | sort -V | head -1) != "$need_glibc" ]]; then
  die "the kit (Debian 12) needs glibc >= $need_glibc, this machine has $have_glibc"
fi

# --- The kit ----------------------------------------------------------------------------------
# The bundle carries Debian's copies of common libraries (zlib, expat, libffi, GL, X11, ...). Where
# this machine has a library of the same soname, its own (newer) copy is used instead: a Debian
# libexpat ahead of the system's on LD_LIBRARY_PATH can break python3's pyexpat, which meson uses.
aside="$kit/gst/lib-system-has"
keep='^lib(gst|glib-2|gobject-2|gio-2|gmodule-2|gthread-2|orc-0|openh264|mp3lame|mpg123|gudev|jpeg)'
ldcache=$( { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null || true; } | awk '/x86-64/ && $(NF-1) == "=>" {print $1, $NF}')
restore_kit() {
  if [[ ! -d $aside ]]; then return 0; fi
  for f in "$aside"/*; do
    if [[ -e $f ]]; then mv -f "$f" "$kit/gst/lib/"; fi
  done
  for l in "$kit"/gst/lib/*.so; do
    if [[ -L $l && $(readlink "$l") == /* ]]; then ln -sfn "$(basename "$(readlink "$l")")" "$l"; fi
  done
  rmdir "$aside"
}
restore_kit
mkdir -p "$aside"
moved=()
for f in "$kit"/gst/lib/*.so.*; do
  n=$(basename "$f")
  [[ -L $f || $n =~ $keep ]] && continue
  s=$(awk -v n="$n" '$1 == n {print $2; exit}' <<<"$ldcache")
  [[ -n $s && -f $s ]] || continue
  mv "$f" "$aside/"; moved+=("$n")
  for l in "$kit"/gst/lib/*.so; do
    if [[ -L $l && $(readlink "$l") == "$n" ]]; then ln -sfn "$s" "$l"; fi
  done
done
log "kit: using this machine's ${#moved[@]} libraries of the same soname: ${moved[*]:-none}"

# shellcheck disable=SC1091
set +u; . "$kit/env.sh"; set -u
export GST_REGISTRY="/tmp/la-gst-registry.bin"
log "kit: $(head -1 "$kit/MANIFEST" 2>/dev/null); parity fixtures: $LIVEAVATAR_PARITY_DIR ($(ls "$LIVEAVATAR_PARITY_DIR" 2>/dev/null | wc -l) files)"

smoke() {
  bash "$kit/smoke/build-and-run.sh" "$cuda_inc" /tmp/la-kit-smoke >>"$pre" 2>&1 \
    && "$py" -c 'import xml.etree.ElementTree, pyexpat, zlib, lzma, bz2, ctypes, json' >>"$pre" 2>&1 \
    && "${mesonc[@]}" --version >/dev/null 2>>"$pre"
}
if ! smoke; then
  log "smoke test failed with this machine's libraries; again with the kit's own copies"
  restore_kit
  smoke || { tail -40 "$pre"; die "the kit's smoke test failed (log: $pre)"; }
fi
log "kit smoke test passed: headers, pkg-config, libraries and GStreamer elements ($(gst-inspect-1.0 2>/dev/null | tail -1))"
[[ $mode == preflight ]] && { echo "gpu-check: SUMMARY: preflight OK on $gpu, torch $torch_ver, $((SECONDS - start)) s"; exit 0; }

# --- Build ----------------------------------------------------------------------------------
setup_log="$out/gpu-check-setup.log" compile_log="$out/gpu-check-compile.log"
if [[ ! -f $build/build.ninja ]]; then
  log "meson setup $build"
  # -Dlive_outputs=disabled: the kit carries no gst-rtsp-server, webrtc or sdp.
  # shellcheck disable=SC2086
  "${mesonc[@]}" setup "$build" "$root" -Dtorch_dir="$torch_dir" "${cuda_args[@]}" -Dbuildtype=release -Dlive_outputs=disabled \
    ${LA_MESON_ARGS:-} >"$setup_log" 2>&1 || { tail -40 "$setup_log"; die "meson setup failed (log: $setup_log)"; }
  grep -E 'found: (YES|NO)|LibTorch|compiler for' "$setup_log" | sed 's/^/  /' || true
else
  log "reusing $build (remove it to configure again)"
fi
t0=$SECONDS
log "meson compile -j ${LA_JOBS:-$(nproc)}"
"${mesonc[@]}" compile -C "$build" -j "${LA_JOBS:-$(nproc)}" >"$compile_log" 2>&1 \
  || { grep -B2 -A12 -m3 'error' "$compile_log" | head -80; tail -20 "$compile_log"; die "build failed (log: $compile_log)"; }
build_s=$((SECONDS - t0))
log "built in $build_s s ($(grep -c 'warning:' "$compile_log" || true) warnings)"
[[ $mode == build ]] && { echo "gpu-check: SUMMARY: build OK in $build_s s on $gpu, torch $torch_ver, total $((SECONDS - start)) s"; exit 0; }

# --- Demo -----------------------------------------------------------------------------------
if [[ $mode == demo ]]; then
  demo=/tmp/la-demo size="${LA_DEMO_SIZE:-256*256}" device="${LA_DEMO_DEVICE:-0}"
  mkdir -p "$demo"
  if [[ ! -f $demo/ckpt/Wan2.2-S2V-14B/config.json ]]; then
    log "la-mkcheckpoint --scale tiny --seed 42"
    "$build/tools/la-mkcheckpoint" --scale tiny --seed 42 --out "$demo/ckpt" >"$demo/mkcheckpoint.log" 2>&1 \
      || { tail -20 "$demo/mkcheckpoint.log"; die "la-mkcheckpoint failed"; }
  fi
  export GST_PLUGIN_PATH="$build/elements"
  demo_log="$out/gpu-check-demo.log"
  log "demo: $kit/demo/speech.wav + face.png -> $out/gpu-check-avatar.mp4 (size $size, cuda-device-id=$device)"
  t0=$(date +%s.%N)
  # examples/wav-to-mp4.sh's pipeline, with cuda-device-id.
  gst-launch-1.0 -e \
    filesrc location="$kit/demo/speech.wav" ! wavparse ! tee name=audio \
    audio. ! queue ! liveavatarbin checkpoint-dir="$demo/ckpt/Wan2.2-S2V-14B" \
      lora="$demo/ckpt/LiveAvatar/liveavatar.safetensors" image="$kit/demo/face.png" size="$size" \
      prompt="A person talking to the camera" cuda-device-id="$device" \
      ! videoconvert ! openh264enc ! h264parse ! queue ! mux. \
    audio. ! queue max-size-time=0 max-size-buffers=0 max-size-bytes=0 ! audioconvert ! lamemp3enc \
      ! mpegaudioparse ! queue ! mux. \
    mp4mux name=mux ! filesink location="$out/gpu-check-avatar.mp4" >"$demo_log" 2>&1 \
    || { tail -30 "$demo_log"; die "the demo pipeline failed (log: $demo_log)"; }
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  frames=$(gst-launch-1.0 -v filesrc location="$out/gpu-check-avatar.mp4" ! qtdemux ! video/x-h264 \
    ! fakesink silent=false 2>&1 | grep -c "last-message = chain" || true)
  duration=$(gst-discoverer-1.0 "$out/gpu-check-avatar.mp4" 2>/dev/null | sed -n 's/^ *Duration: //p' | head -1)
  echo "gpu-check: SUMMARY: demo OK on $gpu, cuda-device-id=$device: $frames frames ($size, 25 fps), duration $duration, $secs s wall" \
    "($(awk -v f="$frames" -v s="$secs" 'BEGIN {printf "%.2f", f / s}') frames/s incl. model load), build $build_s s"
  exit 0
fi

# --- Tests ----------------------------------------------------------------------------------
test_log="$out/gpu-check-test.log"
args=(--num-processes "${LA_TEST_PROCS:-8}" --print-errorlogs)
for s in "${suites[@]}"; do args+=(--suite "$s"); done
args+=("${tests[@]}")
left=$((deadline - (SECONDS - start)))
((left > 30)) || die "no time left for the tests (built in $build_s s); run again on the warm machine (build-gpu is kept)"
log "meson test ${args[*]} ${LA_MESON_TEST_ARGS:-} (stopped after $left s)"
set +e
rm -f "$build"/*.xml  # each gtest program's cases (protocol gtest); counted below
# The bf16-against-fp32 tests run their bf16 side on the GPU (docs/testing.md).
export LA_TEST_DEVICE="${LA_TEST_DEVICE:-cuda:0}"
# shellcheck disable=SC2086
timeout -k 15 "$left" "${mesonc[@]}" test -C "$build" "${args[@]}" ${LA_MESON_TEST_ARGS:-} >"$test_log" 2>&1
rc=$?
set -e
testlog="$build/meson-logs/testlog.json"
[[ -f $testlog ]] && cp "$testlog" "$out/gpu-check-testlog.json"
grep -E '^ *[0-9]+/[0-9]+ ' "$test_log" | sed 's/^/  /' || true
[[ $rc != 124 && $rc != 137 ]] || log "tests STOPPED at the deadline (LA_GPU_DEADLINE_S=$deadline): the list above is partial"
if [[ -f $testlog ]]; then
  "$py" "$root/scripts/summarize-tests.py" "$testlog" | sed 's/^/  /' || true
  "$py" - "$testlog" <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = [r["name"] for r in rows if r.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL")]
slow = sorted(rows, key=lambda r: -r.get("duration", 0))[:5]
print("gpu-check: slowest: " + ", ".join(f'{r["name"]} {r.get("duration", 0):.0f}s' for r in slow))
if bad:
    print("gpu-check: failed: " + ", ".join(bad))
PY
  counts=$("$py" scripts/summarize-tests.py "$testlog" || true)
else
  counts="no testlog.json"
fi
status=OK; [[ $rc == 0 ]] || status="FAILED (meson test exit $rc)"
echo "gpu-check: SUMMARY: $status: $counts; ${tests[*]:-${suites[*]:-all suites}}; build $build_s s; $gpu; torch $torch_ver; total $((SECONDS - start)) s"
exit $((rc == 0 ? 0 : 1))

#!/usr/bin/env bash
# Prints the GPU figures that the notes of issues 12 and 14 quote, ON A GPU MACHINE, after
# scripts/gpu-check.sh has built build-gpu/ (same run, or a warm machine that kept it):
#
#   bash scripts/gpu-check.sh build && bash scripts/gpu-figures.sh [GROUP...]
#
# GROUPs (default all): plan, dit, pipeline, vae, stages, demo. `demo` alone is the quick second
# run after a fix for a crash of the demo line: build (about 90 s) and the demo with its triage.
#
#   1. la-plan's prediction for one H200 (141 GiB) at 720x400, bf16 and fp8 (issue 12: planner vs
#      measured peak device memory);
#   2. la-bench-dit with random full-scale (14B) weights on cuda:0 at 720x400: per-step times,
#      ms/block, TFLOP/s, peak device memory; bf16, then fp8 (issue 14: fp8 on/off);
#   3. la-bench-dit --devices: the DiT pipeline with one stage and with two stages on cuda:0, both
#      splits, tiny scale, directly and over NCCL (--handover nccl-everywhere), and two layer-split
#      stages of the 14B model (issue 12: per-stage busy and idle time with every stage on the one
#      GPU);
#   4. la-bench-vae with random full-scale weights on cuda:0 at 720x400 (per-block decode time);
#      la-bench-stages: liveavatarbin with the miniature on cuda:0, how many of its stages compute
#      at once (issue 14: each element on its own stream);
#   5. the demo pipeline with the miniature (models/miniature) and cuda-device-id=0, then la-lipsync;
#      if gst-launch-1.0 crashes, the same line again with a SIGSEGV reporter preloaded (the caller),
#      with libgcc_s preloaded (the exception unwinder), and with libtorch_global_deps preloaded
#      (the global scope `import torch` makes); and la-bench-stages (the bin in-process) with
#      gst-launch-1.0's libunwind preloaded.
#
# Each step has its own time limit and the whole script LA_FIGURES_S seconds (default 240); a step
# that would start with under 15 s left is skipped and says so. Output: stdout, and
# ${OUT:-/tmp}/gpu-figures-avatar.mp4 from step 5.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
build="${LA_BUILD_DIR:-$root/build-gpu}"
budget="${LA_FIGURES_S:-240}"
out="${OUT:-/tmp}"
start=$SECONDS
mkdir -p "$out"
if [[ ! -x $build/tools/la-bench-dit ]]; then
  echo "gpu-figures: $build/tools/la-bench-dit missing: run scripts/gpu-check.sh build first" >&2
  exit 1
fi
# shellcheck disable=SC1091
set +u; . "$root/.gpu/env.sh"; set -u
export GST_PLUGIN_PATH="$build/elements" GST_REGISTRY=/tmp/la-figures-registry.bin

groups=" ${*:-plan dit pipeline vae stages demo} "
for g in $groups; do
  [[ " plan dit pipeline vae stages demo " == *" $g "* ]] || { echo "gpu-figures: unknown group $g" >&2; exit 2; }
done
step() {  # GROUP LIMIT_S LABEL COMMAND...: runs COMMAND for at most LIMIT_S (less if the budget is short)
  local group=$1 limit=$2 label=$3 left rc
  shift 3
  step_rc=skipped
  [[ $groups == *" $group "* ]] || return 0
  left=$((budget - (SECONDS - start)))
  if ((left < 15)); then echo "gpu-figures: $label: SKIPPED (${left} s of the budget left)"; return 0; fi
  ((limit > left)) && limit=$left
  echo "=== gpu-figures [$((SECONDS - start))s]: $label: $*"
  timeout -k 5 "$limit" "$@" 2>&1
  rc=$?
  step_rc=$rc
  ((rc == 0)) || echo "gpu-figures: $label: exit $rc$( ((rc == 124 || rc == 137)) && echo " (stopped at $limit s)")"
}

step plan 20 "plan bf16" "$build/tools/la-plan" --size '720*400' --devices 1x141
step plan 20 "plan fp8" "$build/tools/la-plan" --size '720*400' --devices 1x141 --fp8
step dit 70 "DiT 14B bf16" "$build/tools/la-bench-dit" --scale full --device cuda:0 --width 720 --height 400 --blocks 5
step dit 70 "DiT 14B fp8" "$build/tools/la-bench-dit" --scale full --device cuda:0 --width 720 --height 400 --blocks 5 --fp8
for d in cuda:0 cuda:0,cuda:0; do
  for s in layers steps; do
    step pipeline 30 "pipeline $d $s" "$build/tools/la-bench-dit" --devices "$d" --split "$s" --scale tiny --blocks 8
  done
done
# The NCCL hand-over path on one GPU (a one-rank communicator sending to itself), against the
# direct hand-overs just above.
for s in layers steps; do
  step pipeline 30 "pipeline cuda:0,cuda:0 $s, NCCL" "$build/tools/la-bench-dit" --devices cuda:0,cuda:0 \
    --split "$s" --scale tiny --blocks 8 --handover nccl-everywhere
done
# Two GPUs or more (never lent so far): the hand-overs between them, NCCL against copies. The
# count is PyTorch's, which heeds CUDA_VISIBLE_DEVICES.
gpus=$(python3 -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
if ((gpus >= 2)); then
  for s in layers steps; do
    for h in nccl copy; do
      step pipeline 30 "pipeline cuda:0,cuda:1 $s, $h" "$build/tools/la-bench-dit" --devices cuda:0,cuda:1 \
        --split "$s" --scale tiny --blocks 8 --handover "$h"
    done
  done
fi
step pipeline 45 "pipeline cuda:0,cuda:0 layers, 14B" "$build/tools/la-bench-dit" --devices cuda:0,cuda:0 --split layers \
  --scale full --width 720 --height 400 --blocks 6
step vae 60 "VAE full bf16" "$build/tools/la-bench-vae" --scale full --device cuda:0 --width 720 --height 400 --blocks 4
mini="$root/models/miniature"
# Element stages on their own streams (issue 14): in-process, before the gst-launch demo line.
step stages 60 "stages (miniature, cuda-device-id=0)" "$build/tools/la-bench-stages" --checkpoint-dir "$mini/Wan2.2-S2V-14B" \
  --lora "$mini/LiveAvatar/liveavatar.safetensors" --image "$mini/face.png" --size '128*128' --blocks 24 --cuda-device-id 0
t0=$(date +%s.%N)
[[ $groups == *" demo "* ]] && rm -f "$out/gpu-figures-avatar.mp4"  # none left from an earlier run
demo_line=(filesrc location="$root/.gpu/demo/speech.wav" ! wavparse ! liveavatarbin
  checkpoint-dir="$mini/Wan2.2-S2V-14B" lora="$mini/LiveAvatar/liveavatar.safetensors" image="$mini/face.png"
  size='128*128' prompt="A person talking to the camera" cuda-device-id=0 !)
step demo 60 "demo (miniature, cuda-device-id=0)" gst-launch-1.0 --no-fault -e "${demo_line[@]}" videoconvert ! openh264enc \
  ! h264parse ! mp4mux ! filesink location="$out/gpu-figures-avatar.mp4"
demo_rc=$step_rc
# A crash of gst-launch-1.0 (seen 2026-11-29: SIGSEGV, a call through a null function pointer in
# the main thread, no stack for a debugger): again with tools/diagnostics/segv_report.c preloaded,
# which names the caller from the return address on the stack, says which library unwinds C++
# exceptions, and names every exception thrown before the crash (type, throwing library); then
# with libgcc_s preloaded, which takes exception unwinding from GStreamer's libunwind (a known
# source of such crashes when a process gets libunwind before libgcc_s).
if [[ $demo_rc =~ ^[0-9]+$ ]] && ((demo_rc > 128 && demo_rc != 137)); then
  if cc -shared -fPIC -o /tmp/segv_report.so "$root/tools/diagnostics/segv_report.c" -ldl; then
    GST_DEBUG="${GST_DEBUG:-lastage:5,liveavatargen:5,lavaedecode:5,laaudiofeat:5,liveavatarbin:5}" \
      LD_PRELOAD=/tmp/segv_report.so step demo 60 "demo crash: caller" gst-launch-1.0 --no-fault "${demo_line[@]}" \
      fakesink
  fi
  libgcc=$(ldconfig -p 2>/dev/null | awk '/libgcc_s.so.1 .*x86-64/ {print $NF; exit}')
  [[ -n $libgcc ]] && LD_PRELOAD=$libgcc step demo 60 "demo with libgcc_s preloaded" \
    gst-launch-1.0 --no-fault "${demo_line[@]}" fakesink
  # `import torch` loads lib/libtorch_global_deps.so (cudart, libgomp) with RTLD_GLOBAL
  # (torch/__init__.py, _load_global_deps); GStreamer loads our plugin, and LibTorch with it,
  # RTLD_LOCAL, while the test programs link LibTorch into the global scope. Preloaded here, the
  # gst-launch process gets Python's arrangement.
  deps=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib",
                                                          "libtorch_global_deps.so"))' 2>/dev/null)
  [[ -f $deps ]] && LD_PRELOAD=$deps step demo 60 "demo with libtorch_global_deps preloaded" \
    gst-launch-1.0 --no-fault "${demo_line[@]}" fakesink
  # The converse: the same bin in-process (la-bench-stages, which passes) with libunwind preloaded,
  # i.e. with gst-launch-1.0's exception unwinder and LibTorch still in the global scope. A crash
  # here blames the unwinder; none blames the plugin's RTLD_LOCAL loading.
  unwind=$(ldconfig -p 2>/dev/null | awk '/libunwind.so.8 .*x86-64/ {print $NF; exit}')
  [[ -n $unwind ]] || unwind="$root/.gpu/gst/lib-system-has/libunwind.so.8"
  [[ -f $unwind ]] && LD_PRELOAD=$unwind step demo 60 "stages with libunwind preloaded (in-process)" \
    "$build/tools/la-bench-stages" --checkpoint-dir "$mini/Wan2.2-S2V-14B" \
    --lora "$mini/LiveAvatar/liveavatar.safetensors" \
    --image "$mini/face.png" --size '128*128' --blocks 4 --cuda-device-id 0
fi
if [[ $groups == *" demo "* && -s $out/gpu-figures-avatar.mp4 ]]; then
  echo "gpu-figures: demo wall $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s (model load included)"
  step demo 30 "lip sync" "$build/tools/la-lipsync" --video "$out/gpu-figures-avatar.mp4" --audio "$root/.gpu/demo/speech.wav"
fi
echo "gpu-figures: done in $((SECONDS - start)) s"

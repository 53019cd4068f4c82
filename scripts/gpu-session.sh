#!/usr/bin/env bash
# Everything a lent GPU machine is for, in one `run` of the device tool (at most 600 s), from the
# repo root with .gpu carried (scripts/gpu-kit.sh made it here):
#
#   run: bash scripts/gpu-session.sh        carry: [".gpu"]        timeout_s: 600
#
# 1. scripts/gpu-check.sh gpu-cases: the build (about 90 s on 16 cores) and every test program
#    with GPU cases, stopped at LA_GPU_DEADLINE_S (default 380 s from the start);
# 2. scripts/gpu-figures.sh in what is left of 580 s: planner, DiT, stages, VAE, the demo line.
# Output: the two scripts' summaries on stdout, their logs under $OUT (gpu-figures.log among them).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$SECONDS
export PYTHONUNBUFFERED=1
LA_GPU_DEADLINE_S="${LA_GPU_DEADLINE_S:-380}" bash "$root/scripts/gpu-check.sh" gpu-cases 2>&1 \
  | grep -v 'Wmaybe-uninitialized\|^ *[0-9]* |\|^ *|'
echo "gpu-session: gpu-check exit ${PIPESTATUS[0]} after $((SECONDS - start)) s"
LA_FIGURES_S=$((580 - (SECONDS - start))) bash "$root/scripts/gpu-figures.sh" >"${OUT:-/tmp}/gpu-figures.log" 2>&1
echo "gpu-session: gpu-figures exit $? after $((SECONDS - start)) s (log: ${OUT:-/tmp}/gpu-figures.log)"
grep -E '^(===|gpu-figures|steady|memory|device memory|DiT|fits|  stage|overlap|sink|blocks|  live|  lava|  pipe|frames|correlation|peak|A/V|#|  Id)' \
  "${OUT:-/tmp}/gpu-figures.log" | cut -c1-220 | tail -c 7000

#!/usr/bin/env bash
# Prints $PATH with the given programs hidden: a directory that holds one of
# them is replaced by a folder of links to everything else in it (so, e.g.,
# /usr/local/bin keeps its other tools while its nvcc disappears).
#   PATH="$(scripts/path-without.sh nvcc)"
set -euo pipefail
shadow="${TMPDIR:-/tmp}/la-path-without-$(id -u)"
out=()
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [[ -n $d && -d $d ]] || continue
  hit=0
  for p in "$@"; do [[ -e $d/$p ]] && hit=1; done
  if ((hit == 0)); then out+=("$d"); continue; fi
  s="$shadow/$(tr '/' '_' <<<"$d")"
  rm -rf "$s"; mkdir -p "$s"
  for f in "$d"/* "$d"/.[!.]*; do
    [[ -e $f || -L $f ]] || continue
    name="${f##*/}"
    skip=0
    for p in "$@"; do [[ $name == "$p" ]] && skip=1; done
    ((skip)) || ln -s "$f" "$s/$name"
  done
  out+=("$s")
done
(IFS=:; echo "${out[*]}")

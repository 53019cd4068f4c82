#!/usr/bin/env python3
"""Fails when a build that takes CUDA from the torch wheel (-Dcudart_from=wheel) compiled a
header of a CUDA toolkit. Such a header is found by accident: a machine whose /usr/local/include
links a toolkit's headers (as this project's development machines do) compiles, a bare Debian 12
does not (crt/host_config.h and nv/target were missing that way until 2026-11-29).

Usage: check-cuda-headers.py BUILD_DIR [NINJA]  (reads `ninja -t deps`, so run it after the build)
"""
import os
import re
import subprocess
import sys

build = sys.argv[1]
ninja = sys.argv[2] if len(sys.argv) > 2 else "ninja"
deps = subprocess.run([ninja, "-C", build, "-t", "deps"], capture_output=True, text=True, check=True).stdout
# A toolkit's folders (not GStreamer's gst/cuda/ headers, not the wheel's nvidia/cu13/).
toolkit = re.compile(r"/cuda-[0-9][0-9.]*/|^/usr/local/cuda/|^/opt/cuda/|^/opt/nvidia/")
found = {}  # header -> first object that included it
seen = set()
obj = ""
for line in deps.splitlines():
    if line and not line[0].isspace():
        obj = line.split(":", 1)[0]
        continue
    header = line.strip()
    if not header or header in seen:
        continue
    seen.add(header)
    real = os.path.realpath(os.path.join(build, header))
    if toolkit.search(real):
        found.setdefault(real, obj)
if found:
    print(f"{len(found)} header(s) of a CUDA toolkit in a build that uses the torch wheel's CUDA:")
    for header, first in sorted(found.items())[:20]:
        print(f"  {header} (first in {first})")
    print("install the wheel that ships them beside torch (scripts/deps.sh: nvidia-cuda-crt, nvidia-cuda-cccl)")
    sys.exit(1)
objects = sum(1 for l in deps.splitlines() if l and not l[0].isspace())
print(f"no CUDA toolkit header in the {objects} objects of {build}")

#!/usr/bin/env python3
"""Print the include and library directories of a LibTorch for meson, and its Python.

Argument: a PyTorch package directory, its share/cmake prefix, or nothing (the
pinned virtual environment of scripts/deps.sh). Reads no Python modules of
torch itself, so it works with any interpreter.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))


def venv_torch():
    version = open(os.path.join(here, "torch-version")).read().strip()
    venv = os.environ.get("LA_TORCH_VENV") or os.path.expanduser(
        f"~/.cache/gst-liveavatar/torch-{version}")
    for lib in ("lib", "lib64"):
        base = os.path.join(venv, lib)
        if not os.path.isdir(base):
            continue
        for py in sorted(os.listdir(base)):
            cand = os.path.join(base, py, "site-packages", "torch")
            if os.path.isdir(cand):
                return cand
    sys.exit(f"find-torch: no torch in {venv}; run scripts/deps.sh or pass -Dtorch_dir=")


arg = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else ""
torch_dir = os.path.abspath(arg) if arg else venv_torch()
if os.path.basename(torch_dir) == "cmake" and os.path.basename(os.path.dirname(torch_dir)) == "share":
    torch_dir = os.path.dirname(os.path.dirname(torch_dir))
inc = os.path.join(torch_dir, "include")
lib = os.path.join(torch_dir, "lib")
for p in (os.path.join(inc, "ATen", "ATen.h"), os.path.join(lib, "libtorch_cpu.so")):
    if not os.path.exists(p):
        sys.exit(f"find-torch: {p} missing: {torch_dir} is not a LibTorch with headers")
# The interpreter of the environment torch lives in (…/lib/pythonX.Y/site-packages/torch
# → …/bin/python), if there is one: tests use it to make real torch.save files.
python = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(torch_dir)))),
                      "bin", "python")


def wheel_cuda():
    """The CUDA runtime and NCCL that the torch wheel brought as nvidia-* packages
    (site-packages/nvidia/cu13 with CUDA 13 wheels; cuda_runtime/ with CUDA 12):
    include directory and shared library of each, '' when absent."""
    nvidia = os.path.join(os.path.dirname(torch_dir), "nvidia")

    def lib_in(d, stem):
        if not os.path.isdir(d):
            return ""
        names = sorted(n for n in os.listdir(d) if n.startswith(stem + ".so"))
        return os.path.join(d, names[-1]) if names else ""

    cudart_inc = cudart_lib = ""
    candidates = sorted((os.path.join(nvidia, n) for n in os.listdir(nvidia) if n.startswith("cu")),
                        reverse=True) if os.path.isdir(nvidia) else []
    for d in candidates + [os.path.join(nvidia, "cuda_runtime")]:
        if os.path.exists(os.path.join(d, "include", "cuda_runtime_api.h")) and lib_in(os.path.join(d, "lib"), "libcudart"):
            cudart_inc, cudart_lib = os.path.join(d, "include"), lib_in(os.path.join(d, "lib"), "libcudart")
            break
    nccl = os.path.join(nvidia, "nccl")
    nccl_inc = os.path.join(nccl, "include") if os.path.exists(os.path.join(nccl, "include", "nccl.h")) else ""
    nccl_lib = lib_in(os.path.join(nccl, "lib"), "libnccl")
    return [cudart_inc, cudart_lib, nccl_inc if nccl_lib else "", nccl_lib if nccl_inc else ""]


# Lines: LibTorch include dir, library dir, the venv's Python ('' if none), then
# the wheel's CUDA runtime include dir and library, NCCL include dir and library
# ('' each when the wheel has none).
print(inc)
print(lib)
print(python if os.path.exists(python) else "")
for line in wheel_cuda():
    print(line)

#!/usr/bin/env bash
# Installs what gst-liveavatar needs and is missing, on Debian 12 as root:
# Debian packages with apt-get, and the pinned torch wheel (LibTorch) into a
# virtual environment outside the source tree, reused across clones:
#   ${LA_TORCH_VENV:-~/.cache/gst-liveavatar/torch-<version>}
# The CUDA 13 toolkit with NCCL is expected under ${CUDA_HOME:-/usr/local/cuda}.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
torch_version="$(cat "$here/torch-version")"
venv="${LA_TORCH_VENV:-$HOME/.cache/gst-liveavatar/torch-$torch_version}"

packages=(
  build-essential pkg-config meson ninja-build ccache python3 python3-venv python3-pip
  clang libclang-rt-14-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-base-apps bc
  libgtest-dev libgmock-dev nlohmann-json3-dev libsentencepiece-dev sentencepiece espeak-ng
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

cuda="${CUDA_HOME:-/usr/local/cuda}"
if [[ ! -x "$cuda/bin/nvcc" || ! -f "$cuda/include/nccl.h" ]]; then
  echo "deps: the CUDA 13 toolkit with NCCL is needed under $cuda (nvcc, include/nccl.h)." >&2
  echo "      Install NVIDIA's cuda-toolkit-13-0 and libnccl-dev, or set CUDA_HOME." >&2
  exit 1
fi

if [[ ! -f "$venv/.torch-$torch_version-ok" ]]; then
  echo "deps: installing torch==$torch_version into $venv (about 3 GB, once)"
  # A system python3 without ensurepip needs python3-venv; pyenv pythons have it.
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==$torch_version" numpy safetensors
  touch "$venv/.torch-$torch_version-ok"
fi

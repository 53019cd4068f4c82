#!/usr/bin/env bash
# Installs what gst-liveavatar needs and is missing, on Debian 12 as root:
# Debian packages with apt-get, and the pinned torch wheel (LibTorch) into a
# virtual environment outside the source tree, reused across clones:
#   ${LA_TORCH_VENV:-~/.cache/gst-liveavatar/torch-<version>}
# No CUDA toolkit is needed: the torch wheel brings the CUDA runtime and NCCL
# (headers and libraries, nvidia-* packages), and the build uses those.
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
  # the RTMP server of the live-output tests (tests/gst/test_live_outputs.cpp)
  nginx libnginx-mod-rtmp
  # gst-rtsp-server, for tools/rtsp_server (la-rtsp-server)
  libgstrtspserver-1.0-dev
  # webrtcbin's ICE agent (libnice) for the WebRTC output (tools/webrtc_loopback,
  # the live-output tests); webrtcbin, DTLS/SRTP and openh264 are in plugins-bad
  gstreamer1.0-nice
  # espeak, the text-to-speech source of examples/text-to-rtmp.sh (and its test)
  gstreamer1.0-espeak
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Install services without starting them (nginx would otherwise start the
  # system's web server on port 80; the tests run their own on loopback).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -f "$venv/.torch-$torch_version-ok" ]]; then
  echo "deps: installing torch==$torch_version into $venv (about 3 GB, once)"
  # A system python3 without ensurepip needs python3-venv; pyenv pythons have it.
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==$torch_version" numpy safetensors
  touch "$venv/.torch-$torch_version-ok"
fi

# The CUDA runtime headers torch brings (nvidia-cuda-runtime) include crt/host_config.h and, through
# cuda_fp16.h (which nccl.h includes), nv/target: NVIDIA ships those in wheels of their own that
# torch does not require, nvidia-cuda-crt and nvidia-cuda-cccl, of the same CUDA major.minor
# (meson.build checks for both).
for runtime in "$venv"/lib/python3*/site-packages/nvidia_cuda_runtime-*.dist-info; do
  [[ -d $runtime ]] || continue
  headers=$(ls -d "$(dirname "$runtime")"/nvidia/cu*/include 2>/dev/null | head -1)
  [[ -n $headers ]] || continue
  cuda_version=$(basename "$runtime" | sed -n 's/^nvidia_cuda_runtime-\([0-9]*\.[0-9]*\)\..*/\1/p')
  for pair in crt/host_config.h:nvidia-cuda-crt nv/target:nvidia-cuda-cccl; do
    [[ -f $headers/${pair%%:*} ]] && continue
    echo "deps: installing ${pair#*:}==$cuda_version.* (${pair%%:*} for the CUDA $cuda_version headers)"
    "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "${pair#*:}==$cuda_version.*"
  done
done

# The reference's libraries for the cross-checks against it, at its pins
# (requirements.txt): transformers and tokenizers for the prompt tokenizer
# (tests/unit/hf_umt5_tokenize.py), with sentencepiece and protobuf for
# transformers' spiece.model converter and regex for the cleaning; peft (with
# accelerate) for the LoRA merge (tests/unit/peft_lora_merge.py). The marker
# holds the list, so a venv made before (or with other pins) gets them.
py_extras="transformers==4.51.3 tokenizers==0.21.4 sentencepiece==0.2.0 protobuf==5.29.5 regex==2026.11.19"
py_extras+=" peft==0.17.1 accelerate==1.15.0"
if [[ "$(cat "$venv/.extras-ok" 2>/dev/null)" != "$py_extras" ]]; then
  echo "deps: installing $py_extras into $venv"
  # shellcheck disable=SC2086  # one word per package
  "$venv/bin/pip" install -q --disable-pip-version-check $py_extras
  echo "$py_extras" >"$venv/.extras-ok"
fi

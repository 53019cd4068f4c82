#!/usr/bin/env bash
# Packs into .gpu/ (git-ignored) everything a GPU machine of the `device` tool lacks to build and
# test gst-liveavatar: it has CUDA 13, PyTorch, meson, ninja and a C++ compiler, but no GStreamer,
# no apt and no network. Run here, on the Debian 12 machine, as root:
#
#   scripts/gpu-kit.sh            # about 20 s; prints the kit's size (about 44 MiB)
#
# .gpu/gst     ../shared/gpu/make-gst-bundle.sh's GStreamer 1.22 bundle, plus the plugins our tests
#              and the demo use (wavenc, lame, videoparsersbad, avi, mpg123) and the GL config header
# .gpu/deps    sentencepiece, GoogleTest, nlohmann_json, GL headers, pkgconf, and every .pc file
#              that the ones we need Require (so pkg-config never looks at the system)
# .gpu/parity.tar.xz  the parity fixtures (../shared/fixtures/parity does not travel), which
#              env.sh unpacks into .gpu/parity when LIVEAVATAR_PARITY_DIR is unset
# .gpu/wheels  nvidia-cuda-crt, -cccl (crt/host_config.h, nv/target for the torch wheel's CUDA headers)
# .gpu/demo    speech.wav (espeak-ng) and face.png for `scripts/gpu-check.sh demo`
# .gpu/smoke   smoke.cpp: compiled by gpu-check.sh first, to fail in seconds rather than minutes
# .gpu/env.sh  source it (bash): PKG_CONFIG_LIBDIR/PATH, LD_LIBRARY_PATH, LIBRARY_PATH, GST_*, PATH
#
# Every .pc file is relocatable (prefix=${pcfiledir}/..). The script checks its own result: each
# pkg-config module resolves with the kit alone, each -l resolves in the kit, every ELF file's
# shared libraries resolve in the kit or the C/C++ runtime, and the smoke test links and runs.
# Then on the GPU machine: scripts/gpu-check.sh (docs/testing.md, "On a GPU machine").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kit="$root/.gpu"
shared="${LA_SHARED_DIR:-$root/../shared}"
arch=x86_64-linux-gnu
sys=/usr/lib/$arch
die() { echo "gpu-kit: $*" >&2; exit 1; }

# pkg-config modules meson.build asks for (gtest with main: true is gtest_main + gtest).
modules="gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0 gstreamer-app-1.0 gstreamer-pbutils-1.0
  gstreamer-check-1.0 gstreamer-cuda-1.0 nlohmann_json sentencepiece gtest gtest_main"
# Elements that the tests, examples/ and the demo create (checked by the smoke test).
elements="appsink audioconvert audioresample audiotestsrc capsfilter decodebin fakesink fakesrc filesink
  filesrc h264parse identity lamemp3enc mp4mux mpegaudioparse openh264enc openh264dec pngenc pngdec
  qtdemux queue tee videoconvert videotestsrc wavenc wavparse typefind uridecodebin jpegenc avimux"
modules=$(echo $modules) elements=$(echo $elements)
# Plugins to add to make-gst-bundle.sh's list, and the ones of it that nothing here uses (dropped
# with the libraries only they need, to keep the kit small: the device tool carries 64 MiB).
extra_plugins="wavenc lame videoparsersbad avi mpg123"
drop_plugins="x264 rtmp2 flv opus voaacenc matroska"
# Headers of GStreamer libraries that nothing here includes.
drop_headers="vulkan webrtc mpegts codecparsers rtsp rtp sdp sctp transcoder player play va wayland insertbin
  photography"
# The C/C++ runtime: the GPU machine has its own (newer: Ubuntu 24.04, glibc 2.39).
skip='^(linux-vdso|libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|ld-linux[^ ]*|libresolv|libutil)\.so'

[[ $(uname -m) == x86_64 ]] || die "needs an x86-64 Debian machine (the GPU machine is x86-64)"
[[ -x "$shared/gpu/make-gst-bundle.sh" ]] || die "$shared/gpu/make-gst-bundle.sh not found (set LA_SHARED_DIR)"
[[ -d "$shared/fixtures/parity" ]] || die "$shared/fixtures/parity not found (set LA_SHARED_DIR)"

need="libsentencepiece-dev libgtest-dev nlohmann-json3-dev libgl-dev pkgconf espeak-ng binutils xz-utils
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-tools"
missing=$(for p in $need; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || echo "$p"; done)
if [[ -n $missing ]]; then
  echo "gpu-kit: installing" $missing
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null \
    || die "apt-get install $missing failed"
fi

# Keep .gpu/ out of git (also in .gitignore; .git/info/exclude covers older checkouts).
exclude="$(git -C "$root" rev-parse --git-path info/exclude)"
[[ $exclude = /* ]] || exclude="$root/$exclude"
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"

rm -rf "$kit"
mkdir -p "$kit"/deps/{include,lib,pkgconfig,bin,libexec} "$kit"/{demo,smoke}

# --- GStreamer ------------------------------------------------------------------------------
"$shared/gpu/make-gst-bundle.sh" "$kit/gst" >/dev/null
for p in $extra_plugins; do
  cp -a "$sys/gstreamer-1.0/libgst$p.so" "$kit/gst/plugins/" || die "plugin $p is not installed here"
done
for p in $drop_plugins; do rm -f "$kit/gst/plugins/libgst$p.so"; done
for h in $drop_headers; do rm -rf "$kit/gst/include/gstreamer-1.0/gst/$h"; done
# gstreamer-gl-1.0.pc (required by gstreamer-cuda-1.0) adds -I${libdir}/gstreamer-1.0/include.
mkdir -p "$kit/gst/lib/gstreamer-1.0"
cp -a "$sys/gstreamer-1.0/include" "$kit/gst/lib/gstreamer-1.0/"

# --- Other headers, libraries and .pc files --------------------------------------------------
# Headers of a Debian package under /usr/include, tree kept.
copy_headers() {
  dpkg -L "$@" | grep '^/usr/include/.' | while read -r f; do
    [[ -f $f ]] || continue
    d="$kit/deps/include/${f#/usr/include/}"; mkdir -p "$(dirname "$d")"; cp -L "$f" "$d"
  done
}
# sentencepiece, GoogleTest, nlohmann_json; GL/gl.h, GL/glext.h, KHR/khrplatform.h: CUDA's cudaGL.h
# (through gst/cuda/gstcudaloader.h) includes <GL/gl.h>, which a CUDA-only machine need not have.
copy_headers libsentencepiece-dev libgtest-dev nlohmann-json3-dev
mkdir -p "$kit/deps/include/GL" "$kit/deps/include/KHR"
cp /usr/include/GL/gl.h /usr/include/GL/glext.h "$kit/deps/include/GL/"
cp /usr/include/KHR/khrplatform.h "$kit/deps/include/KHR/"
cp -a "$sys"/libsentencepiece.so* "$sys"/libsentencepiece_train.so* "$sys"/libgtest.a "$sys"/libgtest_main.a \
  "$kit/deps/lib/"

# A .pc file of this machine, made relocatable: prefix is the folder above the .pc's folder.
relocate_pc() {  # SRC DEST
  { echo 'prefix=${pcfiledir}/..'
    sed -e '/^prefix=/d' -e 's#^exec_prefix=.*#exec_prefix=${prefix}#' \
        -e 's#^libdir=.*#libdir=${prefix}/lib#' -e 's#^includedir=.*#includedir=${prefix}/include#' \
        -e "s#-I/usr/include#-I\${prefix}/include#g" -e "s#-L$sys#-L\${prefix}/lib#g" "$1"
  } >"$2"
}
for m in sentencepiece gtest gtest_main nlohmann_json; do
  relocate_pc "$(pkg-config --variable=pcfiledir "$m")/$m.pc" "$kit/deps/pkgconfig/$m.pc"
done
# Every module that one of ours Requires (public or private: pkgconf reads both for --cflags) and
# the bundle lacks, e.g. libpcre2-8, orc-0.4, zlib, gl, glesv2: their .pc files, relocated into
# deps/ (their -I folders need not exist; only gl/glesv2 are linked, and their libraries are here).
kit_pc() { [[ -f $kit/gst/pkgconfig/$1.pc || -f $kit/deps/pkgconfig/$1.pc ]]; }
todo="$modules"; seen=" "
while [[ -n ${todo// /} ]]; do
  next=""
  for m in $todo; do
    [[ $seen == *" $m "* ]] && continue
    seen+="$m "
    kit_pc "$m" || relocate_pc "$(pkg-config --variable=pcfiledir "$m")/$m.pc" "$kit/deps/pkgconfig/$m.pc"
    next+=" $(pkg-config --print-requires --print-requires-private "$m" | awk '{print $1}' | tr '\n' ' ')"
  done
  todo="$next"
done

# pkg-config itself (the GPU machine may have none): pkgconf with its library beside it, through a
# wrapper so that libpkgconf never shadows a system one for other programs.
cp -L /usr/bin/pkgconf "$kit/deps/libexec/pkgconf"
cp -L "$sys/libpkgconf.so.3" "$kit/deps/libexec/"
cat >"$kit/deps/bin/pkg-config" <<'SH'
#!/bin/sh
d=$(cd "$(dirname "$0")/../libexec" && pwd)
LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/pkgconf" "$@"
SH
chmod +x "$kit/deps/bin/pkg-config"

# --- env.sh ---------------------------------------------------------------------------------
cat >"$kit/env.sh" <<'ENV'
# gst-liveavatar GPU kit (made by scripts/gpu-kit.sh): source it from bash.
_la_kit=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$_la_kit/gst/env.sh"
# pkg-config reads the kit's .pc files and nothing else (PKG_CONFIG_LIBDIR replaces the system
# search path), with the kit's own pkgconf.
export PKG_CONFIG="$_la_kit/deps/bin/pkg-config"
export PKG_CONFIG_LIBDIR="$_la_kit/deps/pkgconfig:$_la_kit/gst/pkgconfig"
export PKG_CONFIG_PATH="$_la_kit/deps/pkgconfig:$_la_kit/gst/pkgconfig"
export LD_LIBRARY_PATH="$_la_kit/deps/lib:$LD_LIBRARY_PATH"
# meson's find_library('sentencepiece_train') links a probe with -l: gcc searches LIBRARY_PATH.
export LIBRARY_PATH="$_la_kit/deps/lib:$_la_kit/gst/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export PATH="$_la_kit/deps/bin:$PATH"
export GST_REGISTRY="${GST_REGISTRY:-/tmp/la-gst-registry.bin}"
# The parity fixtures travel packed (16 MB -> 11 MB); unpacked on first use.
if [[ -z ${LIVEAVATAR_PARITY_DIR:-} && ! -d $_la_kit/parity && -f $_la_kit/parity.tar.xz ]]; then
  tar -C "$_la_kit" -xJf "$_la_kit/parity.tar.xz" || echo "env.sh: could not unpack $_la_kit/parity.tar.xz" >&2
fi
export LIVEAVATAR_PARITY_DIR="${LIVEAVATAR_PARITY_DIR:-$_la_kit/parity}"
export LA_GPU_KIT="$_la_kit"
ENV

# --- nvidia-cuda-crt and -cccl: crt/host_config.h and nv/target, which the torch wheel's CUDA ---
# headers include. The GPU machine's torch has the CUDA runtime wheel without them (meson.build
# checks); gpu-check.sh installs these wheels into that environment when CUDA major.minor matches.
venv="${LA_TORCH_VENV:-$HOME/.cache/gst-liveavatar/torch-$(cat "$root/scripts/torch-version")}"
runtime=$(ls -d "$venv"/lib/python3*/site-packages/nvidia_cuda_runtime-*.dist-info 2>/dev/null | head -1)
[[ -n $runtime ]] || die "no nvidia-cuda-runtime in $venv (run scripts/deps.sh)"
cuda_version=$(basename "$runtime" | sed -n 's/^nvidia_cuda_runtime-\([0-9]*\.[0-9]*\)\..*/\1/p')
mkdir -p "$kit/wheels"
"$venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform manylinux_2_17_x86_64 -d "$kit/wheels" "nvidia-cuda-crt==$cuda_version.*" \
  "nvidia-cuda-cccl==$cuda_version.*" || die "pip download nvidia-cuda-crt/cccl==$cuda_version.* failed"

# --- Data: parity fixtures, demo input ------------------------------------------------------
tar -C "$shared/fixtures" --mode=u+w -cf - parity | xz -6 -T2 >"$kit/parity.tar.xz"
espeak-ng -w "$kit/demo/speech.wav" \
  "Hello! This avatar is generated live, block by block, from the sound of my voice." 2>/dev/null \
  || die "espeak-ng failed"
env -i PATH=/usr/bin:/bin LIVEAVATAR_PARITY_DIR=/nonexistent bash -c ". '$kit/env.sh' && GST_REGISTRY='$kit/demo/.registry' gst-launch-1.0 -q \
  videotestsrc num-buffers=1 pattern=pinwheel ! video/x-raw,width=480,height=480 ! pngenc \
  ! filesink location='$kit/demo/face.png'" || die "gst-launch (the kit's) could not write face.png"
rm -f "$kit/demo/.registry"

# --- Smoke test: every header, library and element the build and the tests use ---------------
cat >"$kit/smoke/smoke.cpp" <<'CPP'
// Compiled against the kit alone (scripts/gpu-kit.sh here, scripts/gpu-check.sh on the GPU machine):
// the headers, the libraries (linked with --no-as-needed) and the GStreamer elements of the build.
#include <gst/app/gstappsink.h>
#include <gst/base/gstbasetransform.h>
#include <gst/check/gstharness.h>
#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudacontext.h>
#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudautils.h>
#include <gst/gst.h>
#include <gst/pbutils/pbutils.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

TEST(Kit, Elements) {
  gst_init(nullptr, nullptr);
  std::istringstream names(LA_ELEMENTS);
  std::string missing, name;
  while (names >> name) {
    GstElementFactory* f = gst_element_factory_find(name.c_str());
    if (f) gst_object_unref(f); else missing += " " + name;
  }
  EXPECT_EQ(missing, "") << "elements missing from the kit's plugins";
}

TEST(Kit, Libraries) {
  gst_init(nullptr, nullptr);
  GstHarness* h = gst_harness_new("identity");
  ASSERT_NE(h, nullptr);
  gst_harness_teardown(h);
  GstDiscoverer* d = gst_discoverer_new(GST_SECOND, nullptr);
  ASSERT_NE(d, nullptr);
  g_object_unref(d);
  EXPECT_NE(gst_app_sink_get_type(), 0u);
  EXPECT_NE(gst_base_transform_get_type(), 0u);
  EXPECT_NE(gst_cuda_allocator_get_type(), 0u);
  GstVideoInfo info;
  gst_video_info_init(&info);
  std::printf("gst_cuda_load_library: %s (needs a GPU driver)\n", gst_cuda_load_library() ? "yes" : "no");
  sentencepiece::SentencePieceProcessor sp;
  EXPECT_FALSE(sp.Load("/nonexistent.model").ok());
  EXPECT_FALSE(sentencepiece::SentencePieceTrainer::Train("--input=/nonexistent --model_prefix=/tmp/x").ok());
  EXPECT_EQ(nlohmann::json::parse(R"({"a": 1})")["a"], 1);
}
CPP
echo "$elements" | tr -s ' \n' ' ' >"$kit/smoke/elements.txt"
echo "$modules" | tr -s ' \n' ' ' >"$kit/smoke/modules.txt"
cat >"$kit/smoke/build-and-run.sh" <<'SH'
#!/usr/bin/env bash
# Usage (after `source .gpu/env.sh`): .gpu/smoke/build-and-run.sh CUDA_INCLUDE_DIR OUT_DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cuda_inc=$1 out=$2
mkdir -p "$out"
# shellcheck disable=SC2046
${CXX:-g++} -std=c++17 -O0 -DGST_USE_UNSTABLE_API -DLA_ELEMENTS="\"$(cat "$here/elements.txt")\"" \
  -isystem "$cuda_inc" "$here/smoke.cpp" -o "$out/la-kit-smoke" \
  $(pkg-config --cflags $(cat "$here/modules.txt")) \
  -Wl,--no-as-needed $(pkg-config --libs $(cat "$here/modules.txt")) -Wl,--as-needed
if ldd "$out/la-kit-smoke" | grep 'not found'; then echo "smoke: unresolved libraries" >&2; exit 1; fi
# LA_KIT_STRICT=1: every library but the C/C++ runtime must come from the kit.
if [[ ${LA_KIT_STRICT:-} == 1 ]]; then
  outside=$(ldd "$out/la-kit-smoke" | awk '/=> \//{print $1, $3}' | grep -v " $LA_GPU_KIT/" \
    | grep -Ev '^(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+)\.so' || true)
  [[ -z $outside ]] || { echo "smoke: libraries from outside the kit:"; echo "$outside"; exit 1; } >&2
fi
GST_REGISTRY="$out/la-kit-smoke-registry.bin" "$out/la-kit-smoke"
SH
chmod +x "$kit/smoke/build-and-run.sh"

# --- Self-checks, in a clean environment with the kit alone -----------------------------------
inkit() { env -i HOME="$HOME" PATH=/usr/bin:/bin LIVEAVATAR_PARITY_DIR=/nonexistent bash -c ". '$kit/env.sh'; $1"; }

# 1. Each module resolves from the kit's .pc files alone.
for m in $modules; do
  inkit "pkg-config --cflags --libs $m" >/dev/null || die "pkg-config $m fails with the kit alone"
done
# 2. Each -l of them is a library in a -L folder of the kit (so the link needs no system library).
flags=$(inkit "pkg-config --libs $modules")
libdirs=$(printf '%s\n' $flags | sed -n 's/^-L//p')
for l in $(printf '%s\n' $flags | sed -n 's/^-l//p' | sort -u); do
  [[ $l =~ ^(pthread|m|dl|rt)$ ]] && continue
  found=""
  for d in $libdirs; do [[ -e $d/lib$l.so || -e $d/lib$l.a ]] && found=1; done
  if [[ -z $found ]]; then  # a versioned library of the bundle without its unversioned name
    real=$(readlink -f "$(gcc -print-file-name="lib$l.so")")
    [[ -f $real ]] || die "-l$l: no lib$l.so here either"
    soname=$(objdump -p "$real" | awk '/SONAME/{print $2}')
    [[ -f $kit/gst/lib/$soname ]] || cp -L "$real" "$kit/gst/lib/$soname"
    ln -sf "$soname" "$kit/gst/lib/lib$l.so"
  fi
done
# 3. Every shared library any ELF file of the kit needs is in the kit (copied if not), or is the
#    C/C++ runtime. Repeated until nothing is added.
elfs() { find "$kit/gst" "$kit/deps" -type f \( -name '*.so*' -o -path '*/bin/*' -o -path '*/libexec/*' \) \
  -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; -print; }
ldpath="$kit/deps/lib:$kit/gst/lib:$kit/deps/libexec"
for round in 1 2 3 4 5; do
  : >"$kit/.added"; : >"$kit/.missing"
  while read -r f; do
    while read -r name path; do
      [[ $name =~ $skip || $path == "$kit"/* ]] && continue
      if [[ $path == not ]]; then echo "${f#$kit/} needs $name, not on this machine either" >>"$kit/.missing"; continue; fi
      cp -L "$path" "$kit/gst/lib/$name"; echo "$name (for ${f#$kit/})" >>"$kit/.added"
    done < <(env -i LD_LIBRARY_PATH="$ldpath" ldd "$f" 2>/dev/null | awk '/=>/{print $1, $3}')
  done < <(elfs)
  [[ -s $kit/.missing ]] && die "$(cat "$kit/.missing")"
  [[ -s $kit/.added ]] || break
  sed 's/^/gpu-kit: added /' "$kit/.added"
done
rm -f "$kit/.added" "$kit/.missing"
# Drop the bundle's libraries that nothing needs any more (those of the dropped plugins).
needed=$(
  { printf '%s\n' $flags | sed -n 's/^-l//p' | while read -r l; do
      [[ -e $kit/gst/lib/lib$l.so ]] && echo "$kit/gst/lib/lib$l.so"; done
    find "$kit/gst/plugins" "$kit/gst/bin" "$kit/deps/lib" -type f; } \
  | while read -r f; do
      echo "$(basename "$(readlink -f "$f")")"
      env -i LD_LIBRARY_PATH="$ldpath" ldd "$f" 2>/dev/null | awk '/=>/{print $1; print $3}' | xargs -r -n1 basename
    done | sort -u)
# readlink -f turns the symlinked names into their targets; ldd names are sonames (files here).
for f in "$kit"/gst/lib/*; do
  n=$(basename "$f")
  [[ -d $f ]] && continue
  [[ -f $f ]] || { rm -f "$f"; continue; }  # dangling symlink
  grep -qxF "$n" <<<"$needed" || grep -qxF "$(basename "$(readlink -f "$f")")" <<<"$needed" || rm -f "$f"
done
find "$kit/gst/lib" -xtype l -delete
# 4. The newest glibc / libstdc++ symbol versions the kit needs (the GPU machine must have them).
glibc=$(elfs | xargs objdump -T 2>/dev/null | grep -o 'GLIBC_2\.[0-9]*' | sort -uV | tail -1)
glibcxx=$(elfs | xargs objdump -T 2>/dev/null | grep -o 'GLIBCXX_3\.4\.[0-9]*' | sort -uV | tail -1)
# 5. The smoke test builds and runs with the kit (and this machine's CUDA headers).
cuda_inc="${CUDA_HOME:-/usr/local/cuda}/include"
if [[ -f $cuda_inc/cuda.h ]]; then
  inkit "LA_KIT_STRICT=1 '$kit/smoke/build-and-run.sh' '$cuda_inc' /tmp/la-kit-smoke >/tmp/la-kit-smoke.log 2>&1" \
    || { tail -30 /tmp/la-kit-smoke.log; die "smoke test failed (log: /tmp/la-kit-smoke.log)"; }
  rm -rf /tmp/la-kit-smoke
  smoke="smoke test built and passed here"
else
  smoke="smoke test NOT run here (no $cuda_inc/cuda.h)"
fi

{ echo "made by scripts/gpu-kit.sh on $(date -u +%F) from $(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "needs-glibc: ${glibc#GLIBC_}"
  echo "needs-glibcxx: ${glibcxx#GLIBCXX_}"
  echo "gstreamer: $(pkg-config --modversion gstreamer-1.0)"
  echo "sentencepiece: $(pkg-config --modversion sentencepiece)"
  echo "gtest: $(pkg-config --modversion gtest)"
  echo "nlohmann_json: $(pkg-config --modversion nlohmann_json)"
} >"$kit/MANIFEST"

rm -rf "$kit/parity"  # unpacked by env.sh where it is used
bytes=$(du -sb "$kit" | cut -f1)
echo "gpu-kit: $kit: $((bytes / 1048576)) MiB ($bytes bytes; gst $(du -sb "$kit/gst" | cut -f1), deps $(du -sb "$kit/deps" | cut -f1), parity.tar.xz $(du -sb "$kit/parity.tar.xz" | cut -f1))"
echo "gpu-kit: pkg-config resolves all of: $(echo $modules) with the kit alone; $smoke"
echo "gpu-kit: the GPU machine needs glibc >= ${glibc#GLIBC_}, libstdc++ >= ${glibcxx#GLIBCXX_} (Ubuntu 24.04 has 2.39 / 3.4.32)"
(( bytes < 50 * 1048576 )) || echo "gpu-kit: warning: over 50 MiB; the device tool carries 64 MiB at most, the source tree included" >&2

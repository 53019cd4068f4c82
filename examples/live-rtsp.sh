#!/usr/bin/env bash
# Serves the avatar over RTSP with la-rtsp-server (tools/rtsp_server, on
# gst-rtsp-server): a live test tone through liveavatarbin, H.264 video and
# Opus audio over RTP, at rtsp://ADDRESS:PORT/avatar, until Ctrl-C.
#
#   examples/live-rtsp.sh CHECKPOINT_DIR LORA IMAGE [PORT] [SIZE] [PROMPT] [ADDRESS]
#
# PORT defaults to 8554, ADDRESS to 127.0.0.1 (0.0.0.0: every interface).
# Play it with
#   gst-play-1.0 rtsp://127.0.0.1:8554/avatar    (or ffplay, VLC)
# CHECKPOINT_DIR is the Wan2.2-S2V-14B directory, LORA liveavatar.safetensors
# (docs/checkpoints.md). The plugin must be on GST_PLUGIN_PATH (a build tree:
# GST_PLUGIN_PATH=build/elements); la-rtsp-server is taken from
# LA_RTSP_SERVER, else build/tools/, else PATH. The media is shared: every
# client sees the same avatar, generated once, from the first client's PLAY.
set -euo pipefail
if (($# < 3)); then
  sed -n '2,15p' "$0" >&2
  exit 2
fi
ckpt="$1" lora="$2" image="$3" port="${4:-8554}" size="${5:-720*400}" prompt="${6:-A person talking to the camera}"
address="${7:-127.0.0.1}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
server="${LA_RTSP_SERVER:-}"
if [[ -z "$server" ]]; then
  if [[ -x "$here/../build/tools/la-rtsp-server" ]]; then
    server="$here/../build/tools/la-rtsp-server"
  else
    server="$(command -v la-rtsp-server || true)"
  fi
fi
if [[ -z "$server" ]]; then
  echo "live-rtsp.sh: no la-rtsp-server (build it, or set LA_RTSP_SERVER)" >&2
  exit 1
fi
exec "$server" --address "$address" --port "$port" --mount /avatar \
  --checkpoint-dir "$ckpt" --lora "$lora" --image "$image" --size "$size" --prompt "$prompt"

#!/usr/bin/env bash
# Installs ocellus as a systemd service (see deploy/README.md).
#
#   deploy/install.sh [--config FILE] [--video] [--gpu nvidia|jetson]
#                     [--onnxruntime DIR] [--binary FILE] [--root DIR] [--no-start]
#
#   --config FILE      config to install as /etc/ocellus/ocellus.toml (an existing one
#                      is kept; the new one is written beside it as ocellus.toml.new)
#   --video            let the service open V4L2 cameras (/dev/video*)
#   --gpu nvidia       let it open the NVIDIA device nodes (CUDA / TensorRT on a PC)
#   --gpu jetson       the same for Jetson (nvhost / nvmap / nvgpu nodes)
#   --onnxruntime DIR  where libonnxruntime.so* comes from (default vendor/onnxruntime/lib,
#                      the CPU build deploy/setup.sh fetched; point it at a GPU build)
#   --binary FILE      the ocellus binary (default: target/release/ocellus, built if missing)
#   --root DIR         install under DIR instead of / (packaging, tests); nothing is
#                      started there
#   --no-start         install and enable, but do not (re)start the service
#
# Without --video/--gpu the unit gives the daemon no device nodes at all
# (PrivateDevices=yes). The unit and its drop-in are checked with
# `systemd-analyze verify` before anything is started.
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
say() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }

CONFIG="" VIDEO=false GPU="" ORT_DIR="$ROOT_DIR/vendor/onnxruntime/lib" BINARY="" DEST="/" START=true
while [ $# -gt 0 ]; do
  case "$1" in
    --config) CONFIG="${2:?--config needs a file}"; shift 2 ;;
    --video) VIDEO=true; shift ;;
    --gpu) GPU="${2:?--gpu needs nvidia or jetson}"; shift 2 ;;
    --onnxruntime) ORT_DIR="${2:?--onnxruntime needs a directory}"; shift 2 ;;
    --binary) BINARY="${2:?--binary needs a file}"; shift 2 ;;
    --root) DEST="${2:?--root needs a directory}"; shift 2 ;;
    --no-start) START=false; shift ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
case "$GPU" in "" | nvidia | jetson) ;; *) die "--gpu $GPU: expected nvidia or jetson" ;; esac
DEST="${DEST%/}"

if [ -z "$BINARY" ]; then
  BINARY="$ROOT_DIR/target/release/ocellus"
  if [ ! -x "$BINARY" ]; then
    say "building the release binary (cargo build --release --locked)"
    (cd "$ROOT_DIR" && cargo build --release --locked)
  fi
fi
[ -x "$BINARY" ] || die "no ocellus binary at $BINARY"
ls "$ORT_DIR"/libonnxruntime.so* >/dev/null 2>&1 ||
  die "no libonnxruntime.so* in $ORT_DIR (run deploy/setup.sh, or pass --onnxruntime DIR)"
if [ -n "$CONFIG" ]; then
  [ -f "$CONFIG" ] || die "no config at $CONFIG"
  "$BINARY" check -c "$CONFIG" || die "$CONFIG does not pass 'ocellus check' (see above)"
fi

BIN_DIR="$DEST/usr/local/bin"
LIB_DIR="$DEST/usr/local/lib/ocellus"
DOC_DIR="$DEST/usr/local/share/doc/ocellus"
UNIT_DIR="$DEST/etc/systemd/system"
ETC_DIR="$DEST/etc/ocellus"
install -d "$BIN_DIR" "$LIB_DIR" "$DOC_DIR" "$UNIT_DIR" "$ETC_DIR"
install -m 0755 "$BINARY" "$BIN_DIR/ocellus"
cp -a "$ORT_DIR"/libonnxruntime*.so* "$LIB_DIR/"
# The execution-provider libraries of a GPU build sit beside the main library.
if [ ! -e "$LIB_DIR/libonnxruntime.so" ]; then
  ln -sf "$(basename "$(ls "$LIB_DIR"/libonnxruntime.so.* | head -n1)")" "$LIB_DIR/libonnxruntime.so"
fi
install -m 0644 "$ROOT_DIR/deploy/README.md" "$DOC_DIR/README.md"
install -m 0644 "$ROOT_DIR/systemd/ocellus.service" "$UNIT_DIR/ocellus.service"
if [ -n "$CONFIG" ]; then
  if [ -e "$ETC_DIR/ocellus.toml" ] && ! cmp -s "$CONFIG" "$ETC_DIR/ocellus.toml"; then
    install -m 0640 "$CONFIG" "$ETC_DIR/ocellus.toml.new"
    say "kept $ETC_DIR/ocellus.toml; the new config is $ETC_DIR/ocellus.toml.new"
  else
    install -m 0640 "$CONFIG" "$ETC_DIR/ocellus.toml"
  fi
elif [ ! -e "$ETC_DIR/ocellus.toml" ]; then
  say "no config yet: write $ETC_DIR/ocellus.toml (pipelines/*.toml are examples)"
fi

DROPIN_DIR="$UNIT_DIR/ocellus.service.d"
DROPIN="$DROPIN_DIR/devices.conf"
if $VIDEO || [ -n "$GPU" ]; then
  install -d "$DROPIN_DIR"
  {
    echo "# Written by deploy/install.sh: the device nodes ocellus may open."
    echo "[Service]"
    echo "PrivateDevices=no"
    echo "DevicePolicy=closed"
    if $VIDEO; then
      echo "DeviceAllow=char-video4linux rw"
      echo "SupplementaryGroups=video"
    fi
    case "$GPU" in
      nvidia)
        # /dev/nvidia0.., nvidiactl, nvidia-modeset share the nvidia-frontend major.
        echo "DeviceAllow=char-nvidia-frontend rw"
        echo "DeviceAllow=char-nvidia-uvm rw"
        echo "DeviceAllow=char-nvidia-caps rw"
        echo "SupplementaryGroups=video render"
        ;;
      jetson)
        # Jetson's GPU nodes (nvhost-*, nvmap, nvgpu/) differ between L4T releases:
        # allow device nodes as the groups permit; narrow with DeviceAllow= once known.
        echo "DevicePolicy=auto"
        echo "SupplementaryGroups=video render"
        ;;
    esac
  } >"$DROPIN"
  say "device access: $DROPIN"
else
  rm -f "$DROPIN"
fi

# Check the unit and its drop-in as installed, pointing ExecStart at the installed
# binary (systemd-analyze checks that it exists). Any warning is an error here.
if command -v systemd-analyze >/dev/null 2>&1; then
  check="$(mktemp -d)"
  sed "s#/usr/local/bin/ocellus#$BIN_DIR/ocellus#" "$UNIT_DIR/ocellus.service" >"$check/ocellus.service"
  if [ -f "$DROPIN" ]; then
    mkdir -p "$check/ocellus.service.d"
    cp "$DROPIN" "$check/ocellus.service.d/"
  fi
  if ! out="$(systemd-analyze verify "$check/ocellus.service" 2>&1)" || [ -n "$out" ]; then
    rm -rf "$check"
    die "systemd-analyze verify: ${out:-failed}"
  fi
  rm -rf "$check"
  say "systemd-analyze verify: ok"
else
  say "systemd-analyze not found; the unit was not verified"
fi

if [ "$DEST" != "" ]; then
  say "installed under $DEST (nothing started)"
  exit 0
fi
if [ "$(cat /proc/1/comm 2>/dev/null)" != "systemd" ]; then
  say "installed; systemd is not running here, so nothing was enabled or started"
  exit 0
fi
systemctl daemon-reload
systemctl enable ocellus.service
if $START; then
  systemctl restart ocellus.service
  say "started: systemctl status ocellus; journalctl -u ocellus -f"
fi

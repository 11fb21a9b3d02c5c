#!/usr/bin/env bash
# Prepare a Debian 12 machine (fresh or not) to build, test and run ocellus.
#
#   * Debian packages: GStreamer (dev + plugins + tools), RTSP server, mosquitto,
#     a C toolchain, pip (only to fetch the ONNX Runtime wheel). Installed only
#     when missing (checked with dpkg-query).
#   * ONNX Runtime shared library, taken from the pinned PyPI wheel
#     onnxruntime==1.32.0, sha256-checked, into vendor/onnxruntime/lib/.
#   * A Rust toolchain (cargo + rustfmt + clippy).
#
# Idempotent; prints one line (where the ONNX Runtime library is) when all is
# already present. Run as root or as a user with sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); fi
fi

# ---------------------------------------------------------------- .gitignore
for line in /target/ /vendor/ /.whl/ /.gl/; do
  if [ ! -f .gitignore ] || ! grep -qxF -- "$line" .gitignore; then
    echo "$line" >>.gitignore
  fi
done

# ----------------------------------------------------------- Debian packages
APT_PACKAGES=(
  pkg-config
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-base-apps   # gst-discoverer-1.0 (used by the tests)
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  gstreamer1.0-tools
  gstreamer1.0-rtsp
  mosquitto
  mosquitto-clients
  systemd                          # systemd-analyze verify (tests check the unit)
  chromium                         # a real browser for the web UI's tests (WebDriver)
  chromium-driver                  # chromedriver, which those tests drive it through
  # building Rust crates that compile C (ring, ...), fetching rustup / wheels
  gcc
  libc6-dev
  ca-certificates
  curl
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# ONNX Runtime pins (see the ONNX Runtime section below).
ORT_VERSION=1.32.0
case "$(uname -m)" in
  x86_64 | amd64)
    ORT_WHEEL=onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl
    ORT_PLATFORM=manylinux_2_28_x86_64
    ORT_WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
    ORT_SO_SHA256=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
    ;;
  aarch64 | arm64)
    ORT_WHEEL=onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_aarch64.whl
    ORT_PLATFORM=manylinux_2_28_aarch64
    ORT_WHEEL_SHA256=2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c
    ORT_SO_SHA256=49852228a93995158b2a813d4df487d47a1b76b0eaa894507ef49e91b6d7954a
    ;;
  *) die "unsupported architecture $(uname -m) (ONNX Runtime is pinned for x86_64 and aarch64)" ;;
esac
ORT_LIB_DIR="$ROOT/vendor/onnxruntime/lib"
ORT_SO_NAME="libonnxruntime.so.$ORT_VERSION"
ORT_SO="$ORT_LIB_DIR/$ORT_SO_NAME"
WHEEL_CACHE="$ROOT/.whl"

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

ort_present=false
if [ -f "$ORT_SO" ] && [ "$(sha256_of "$ORT_SO")" = "$ORT_SO_SHA256" ]; then
  ort_present=true
fi

# python3 + pip are only needed to fetch the wheel; any working pip will do.
if ! $ort_present && ! python3 -m pip --version >/dev/null 2>&1; then
  missing+=(python3 python3-pip)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
    die "missing Debian packages (${missing[*]}) and not root and no sudo: install them first"
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_log="$(mktemp)"
  "${SUDO[@]}" apt-get update -qq >"$apt_log" 2>&1 || {
    cat "$apt_log" >&2
    die "apt-get update failed"
  }
  # Note: on a machine running systemd, installing mosquitto also enables its
  # system service on port 1883. Nothing here depends on it: tests and the demo
  # start their own brokers on free loopback ports.
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >"$apt_log" 2>&1 || {
    cat "$apt_log" >&2
    die "apt-get install failed for: ${missing[*]}"
  }
  rm -f "$apt_log"
fi

# ------------------------------------------------------------ ONNX Runtime
if ! $ort_present; then
  wheel="$WHEEL_CACHE/$ORT_WHEEL"
  if [ ! -f "$wheel" ] || [ "$(sha256_of "$wheel")" != "$ORT_WHEEL_SHA256" ]; then
    say "downloading onnxruntime==$ORT_VERSION ($ORT_PLATFORM) from PyPI"
    mkdir -p "$WHEEL_CACHE"
    dl="$(mktemp -d "$WHEEL_CACHE/dl.XXXXXX")"
    if ! python3 -m pip download -q --disable-pip-version-check --no-deps \
      --only-binary=:all: --platform "$ORT_PLATFORM" --python-version 3.11 \
      --implementation cp --abi cp311 "onnxruntime==$ORT_VERSION" -d "$dl" >"$dl.log" 2>&1; then
      cat "$dl.log" >&2
      rm -rf "$dl" "$dl.log"
      die "pip download of onnxruntime==$ORT_VERSION failed"
    fi
    [ -f "$dl/$ORT_WHEEL" ] || {
      ls "$dl" >&2
      rm -rf "$dl" "$dl.log"
      die "expected wheel $ORT_WHEEL was not downloaded"
    }
    mv -f "$dl/$ORT_WHEEL" "$wheel"
    rm -rf "$dl" "$dl.log"
  fi
  got="$(sha256_of "$wheel")"
  if [ "$got" != "$ORT_WHEEL_SHA256" ]; then
    rm -f "$wheel"
    die "sha256 mismatch for $ORT_WHEEL: expected $ORT_WHEEL_SHA256, got $got"
  fi

  mkdir -p "$ORT_LIB_DIR"
  tmp_so="$ORT_LIB_DIR/.$ORT_SO_NAME.tmp"
  python3 - "$wheel" "onnxruntime/capi/$ORT_SO_NAME" "$tmp_so" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  got="$(sha256_of "$tmp_so")"
  if [ "$got" != "$ORT_SO_SHA256" ]; then
    rm -f "$tmp_so"
    die "sha256 mismatch for $ORT_SO_NAME from $ORT_WHEEL: expected $ORT_SO_SHA256, got $got"
  fi
  chmod 0644 "$tmp_so"
  mv -f "$tmp_so" "$ORT_SO"
  say "installed ONNX Runtime $ORT_VERSION (sha256 $ORT_SO_SHA256)"
fi
for link in libonnxruntime.so libonnxruntime.so.1; do
  if [ "$(readlink "$ORT_LIB_DIR/$link" 2>/dev/null || true)" != "$ORT_SO_NAME" ]; then
    ln -sfn "$ORT_SO_NAME" "$ORT_LIB_DIR/$link"
  fi
done
echo "setup: ONNX Runtime $ORT_VERSION: $ORT_LIB_DIR/libonnxruntime.so (override with ORT_DYLIB_PATH)"

# ------------------------------------------------------------ Rust toolchain
RUST_VERSION=1.95
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  say "no cargo found: installing Rust $RUST_VERSION (minimal profile) with rustup"
  if ! curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
    sh -s -- -y -q --no-modify-path --profile minimal \
      --default-toolchain "$RUST_VERSION" -c rustfmt -c clippy >/dev/null; then
    die "could not install Rust $RUST_VERSION with rustup (is static.rust-lang.org reachable?); install Rust >= $RUST_VERSION with cargo, rustfmt and clippy by hand"
  fi
  export PATH="$HOME/.cargo/bin:$PATH"
  command -v cargo >/dev/null 2>&1 || die "rustup ran but cargo is still not on PATH"
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    say "adding rustfmt and clippy to the Rust toolchain"
    rustup component add rustfmt clippy >/dev/null 2>&1 ||
      die "could not add rustfmt/clippy with rustup"
  else
    die "cargo fmt / cargo clippy are missing and there is no rustup to add them"
  fi
fi

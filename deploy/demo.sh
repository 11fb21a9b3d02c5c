#!/usr/bin/env bash
# The project's demo: ocellus watching a 16 s clip (an astronaut, a cup of
# coffee, a cat, a machine display) with pipelines/demo.toml, publishing to a private MQTT broker
# whose traffic is printed here, prefixed with "[mqtt]".
#
#   deploy/demo.sh [extra ocellus arguments...]
#
# Environment:
#   OCELLUS_MQTT_URL  use this broker instead of starting a local one
#   OCELLUS_MODELS    model folder (default: ../shared/models)
#   OCELLUS_SHARED    shared folder (default: ../shared)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { echo "demo: $*" >&2; }
die() { echo "demo: error: $*" >&2; exit 1; }

bash deploy/setup.sh

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
# Debian puts mosquitto in /usr/sbin, which a non-root PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac

say "building ocellus (first build takes several minutes)"
cargo build --locked --bin ocellus
BIN="$ROOT/target/debug/ocellus"

SHARED="${OCELLUS_SHARED:-$ROOT/../shared}"
[ -d "$SHARED/media" ] || die "shared material not found at $SHARED (set OCELLUS_SHARED)"
SHARED="$(cd "$SHARED" && pwd)"
export OCELLUS_MODELS="${OCELLUS_MODELS:-$SHARED/models}"
[ -d "$OCELLUS_MODELS" ] || die "models not found at $OCELLUS_MODELS (set OCELLUS_MODELS)"
OCELLUS_MODELS="$(cd "$OCELLUS_MODELS" && pwd)"

# ---------------------------------------------------------------- the clip
CLIP="$ROOT/target/demo/demo-v2.mkv"
if [ ! -s "$CLIP" ]; then
  say "making the demo clip $CLIP"
  mkdir -p "$(dirname "$CLIP")"
  W=1280 H=720 FPS=10 SECONDS_EACH=4
  N=$((FPS * SECONDS_EACH))
  tmp="$CLIP.partial.mkv"
  segments=()
  for img in astronaut.png coffee.png chelsea.png ocr_synthetic_machine3.png; do
    [ -f "$SHARED/media/$img" ] || die "missing $SHARED/media/$img"
    segments+=(
      filesrc "location=$SHARED/media/$img" ! decodebin ! videoconvert
      ! videoscale add-borders=true
      ! "video/x-raw,format=I420,width=$W,height=$H,pixel-aspect-ratio=1/1"
      ! imagefreeze "num-buffers=$N" ! videorate ! "video/x-raw,framerate=$FPS/1" ! c.
    )
  done
  if ! gst_log="$(gst-launch-1.0 -q \
    concat name=c ! videoconvert \
    ! x264enc tune=zerolatency speed-preset=ultrafast "key-int-max=$((FPS * 2))" \
    ! h264parse ! matroskamux ! filesink "location=$tmp" \
    "${segments[@]}" 2>&1)"; then
    rm -f "$tmp"
    echo "$gst_log" >&2
    die "gst-launch-1.0 could not make the demo clip"
  fi
  mv -f "$tmp" "$CLIP"
fi
export OCELLUS_DEMO_CLIP="$CLIP"

CONFIG=pipelines/demo.toml
[ -f "$CONFIG" ] || die "$CONFIG not found"
[ -x "$BIN" ] || die "$BIN was not built"

# ------------------------------------------------------------- the broker
PIDS=()
WORK=""
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

if [ -n "${OCELLUS_MQTT_URL:-}" ]; then
  MQTT_URL="$OCELLUS_MQTT_URL"
  say "using the MQTT broker at $MQTT_URL"
else
  command -v mosquitto >/dev/null 2>&1 || die "mosquitto is not installed (run deploy/setup.sh)"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/ocellus-demo.XXXXXX")"
  PORT=""
  for _ in 1 2 3 4 5; do
    try="$(free_port)"
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n' \
      "$try" >"$WORK/mosquitto.conf"
    # setsid: Ctrl-C in the terminal must reach ocellus only, so that it can
    # still say goodbye to the broker; cleanup() stops these two.
    setsid mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if port_open "$try"; then PORT="$try"; break; fi
      sleep 0.1
    done
    if [ -n "$PORT" ]; then
      PIDS+=("$pid")
      break
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -z "$PORT" ]; then
    cat "$WORK/mosquitto.log" >&2
    die "could not start mosquitto on a free 127.0.0.1 port"
  fi
  MQTT_URL="mqtt://127.0.0.1:$PORT"
  say "MQTT broker: $MQTT_URL (watch it yourself: mosquitto_sub -h 127.0.0.1 -p $PORT -t 'ocellus/#' -v)"

  # Print what ocellus publishes, one line per message, marked [mqtt].
  setsid mosquitto_sub -h 127.0.0.1 -p "$PORT" -t 'ocellus/#' -F '[mqtt] %t %p' &
  PIDS+=("$!")
fi

# ------------------------------------------------------- the taught query
# One labelled frame per photo (the clip shows each for 4 s); the examples go to
# pipelines/.ocellus/examples/demo/scene/ (crops and embeddings), taught afresh.
say "teaching query scene one frame of each photo (ocellus teach)"
"$BIN" teach -c "$CONFIG" --query scene --all >/dev/null
for taught in astronaut@2 coffee@6 cat@10 display@14; do
  "$BIN" teach -c "$CONFIG" --query scene --state "${taught%@*}" "$OCELLUS_DEMO_CLIP@${taught#*@}" >&2
done

say "clip: $OCELLUS_DEMO_CLIP"
say "models: $OCELLUS_MODELS"
say "web interface: http://127.0.0.1:9380/ (open it in a browser on this machine)"
say "running: $BIN run -c $CONFIG --mqtt-url $MQTT_URL $* (Ctrl-C to stop)"
set +e
# The exit line says what watching cost: the clip plays in real time, as a camera.
TIMEFORMAT='demo: ocellus ran %R s and used %U s user + %S s system CPU (%P%% of one core)'
time "$BIN" run -c "$CONFIG" --mqtt-url "$MQTT_URL" "$@"
rc=$?
set -e
# Give the subscriber a moment to print the last messages.
sleep 0.5
exit "$rc"

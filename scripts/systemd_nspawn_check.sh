#!/usr/bin/env bash
# Runs the installed service under a real systemd: boots this machine's own OS tree
# (an overlay on /, changes in tmpfs) in systemd-nspawn, installs ocellus into it
# with deploy/install.sh, and checks from inside, as a oneshot unit, what only a real
# service manager shows: READY and STATUS (Type=notify), the dynamic user, MQTT
# answers from the hardened service, `systemctl reload`, watchdog pings, a restart by
# the watchdog when an encoder hangs (tests/fixtures/stall), and a clean stop.
#
#   sudo scripts/systemd_nspawn_check.sh [BINARY]     # default target/debug/ocellus
#
# Needs root, systemd-container (systemd-nspawn), overlayfs, gst-launch-1.0 and
# mosquitto installed on this machine (deploy/setup.sh). Not part of the test suite:
# CI machines do not allow booting a container. Prints the probe's report; exit 0
# when every check passed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BINARY="$(realpath "${1:-$REPO/target/debug/ocellus}")"
SHARED="$(realpath "${OCELLUS_SHARED:-$REPO/../shared}")"
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 2; }
command -v systemd-nspawn >/dev/null || { echo "install systemd-container" >&2; exit 2; }
[ -x "$BINARY" ] || { echo "no binary at $BINARY (cargo build)" >&2; exit 2; }

BASE="$(mktemp -d /mnt/ocellus-nspawn.XXXXXX)"
mount -t tmpfs tmpfs "$BASE"
M="$BASE/merged"
cleanup() {
  umount "$M" 2>/dev/null || true
  umount "$BASE" 2>/dev/null || true
  rmdir "$BASE" 2>/dev/null || true
}
trap cleanup EXIT
mkdir -p "$BASE"/{upper,work,merged}
mount -t overlay overlay -o "lowerdir=/,upperdir=$BASE/upper,workdir=$BASE/work" "$M"

# A clip of a person, readable by the service's dynamic user.
mkdir -p "$M/opt/ocellus-check"
gst-launch-1.0 -q filesrc location="$SHARED/media/astronaut.png" ! decodebin ! videoconvert ! \
  videoscale ! video/x-raw,width=640,height=480 ! imagefreeze num-buffers=40 ! \
  video/x-raw,framerate=10/1 ! videoconvert ! x264enc tune=zerolatency key-int-max=10 ! \
  matroskamux ! filesink location="$M/opt/ocellus-check/person.mkv"
gst-launch-1.0 -q videotestsrc pattern=white num-buffers=1 ! video/x-raw,width=64,height=64 ! \
  pngenc ! filesink location="$M/opt/ocellus-check/white.png"
gst-launch-1.0 -q filesrc location="$M/opt/ocellus-check/white.png" ! decodebin ! videoconvert ! \
  videoscale ! video/x-raw,width=320,height=240 ! imagefreeze num-buffers=20 ! \
  video/x-raw,framerate=10/1 ! videoconvert ! x264enc ! matroskamux ! \
  filesink location="$M/opt/ocellus-check/white.mkv"
cp -r "$REPO/tests/fixtures/stall" "$M/opt/ocellus-check/stall"

camera() {
  cat <<EOF
[engine]
threads = 1

[mqtt]
url = "mqtt://127.0.0.1:1883"
client_id = "ocellus-nspawn-check"
state_dir = "/var/lib/ocellus"

[models.coco]
family = "yolox"
dir = "$SHARED/models/yolox_nano_coco"
providers = ["cpu"]

[[cameras]]
id = "door"
url = "/opt/ocellus-check/person.mkv"
repeat = true
sample_fps = 2

[[cameras.queries]]
id = "person"
ask = "is there a person?"
kind = "yes_no"
model = "coco"
label = "person"
EOF
}
camera >"$BASE/ocellus.toml"
{
  camera
  cat <<EOF

[models.stall]
family = "yolox"
dir = "/opt/ocellus-check/stall"
providers = ["cpu"]

[[cameras]]
id = "stuck"
url = "/opt/ocellus-check/white.mkv"
sample_fps = 2

[[cameras.queries]]
id = "person"
ask = "a person?"
kind = "yes_no"
model = "stall"
label = "person"
EOF
} >"$M/opt/ocellus-check/stuck.toml"

# The config names files inside the container, so it is checked there, not here.
bash "$REPO/deploy/install.sh" --root "$M" --binary "$BINARY"
install -m 0644 "$BASE/ocellus.toml" "$M/etc/ocellus/ocellus.toml"
ln -sf /etc/systemd/system/ocellus.service "$M/etc/systemd/system/multi-user.target.wants/ocellus.service"
# A short watchdog so that the hang is noticed within the check.
mkdir -p "$M/etc/systemd/system/ocellus.service.d"
printf '[Service]\nWatchdogSec=6s\n' >"$M/etc/systemd/system/ocellus.service.d/watchdog.conf"

cat >"$M/opt/ocellus-check/probe.sh" <<'PROBE'
#!/bin/bash
out=/opt/ocellus-check/report
ok=0 bad=0
check() { if eval "$2"; then echo "ok   $1" >>$out; ok=$((ok+1)); else echo "FAIL $1" >>$out; bad=$((bad+1)); fi; }
show() { systemctl show ocellus -p "$1" --value; }
wait_for() { for _ in $(seq 1 "$2"); do eval "$1" && return 0; sleep 1; done; return 1; }
: >$out
check "Type=notify service becomes active (READY=1)" 'wait_for "systemctl is-active -q ocellus" 60'
check "STATUS= from the daemon: $(show StatusText)" '[[ "$(show StatusText)" == "1 camera(s) running, 1 model(s) loaded" ]]'
pid=$(show MainPID)
check "runs as a dynamic user: $(ps -o user= -p $pid)" '[ "$(ps -o uid= -p $pid)" -ge 61184 ]'
check "person ON over MQTT from the hardened service" \
  'timeout 30 mosquitto_sub -h 127.0.0.1 -t ocellus/door/query/person/state -C 1 -W 30 | grep -qx ON'
w1=$(show WatchdogTimestampMonotonic); sleep 4; w2=$(show WatchdogTimestampMonotonic)
check "watchdog pings arrive ($w1 -> $w2)" '[ "$w2" -gt "$w1" ]'
systemctl reload ocellus
check "systemctl reload: active again, same PID" 'wait_for "systemctl is-active -q ocellus" 20 && [ "$(show MainPID)" = "$pid" ]'
check "the reload is in the journal" 'wait_for "journalctl -u ocellus -o cat | grep -q \"^ INFO reload: \\|^INFO reload: \"" 20'
check "journal lines carry no timestamp of their own" \
  '! journalctl -u ocellus -o cat | grep -qE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T"'
# An encoder that hangs: reload into a config with the stall model.
cp /opt/ocellus-check/stuck.toml /etc/ocellus/ocellus.toml
systemctl reload ocellus
stalled() { show StatusText | grep -q "stalled: camera stuck: evaluator"; }
restarted() { [ "$(show NRestarts)" -ge 1 ]; }
check "2 cameras after the reload, the stall named in STATUS" 'wait_for stalled 30'
check "systemd restarts the daemon on the watchdog timeout" 'wait_for restarted 40'
check "the journal says why" 'journalctl -u ocellus | grep -q "Watchdog timeout"'
echo "restarted: NRestarts=$(show NRestarts), new PID $(show MainPID)" >>$out
# Back to the healthy config; a clean stop publishes offline.
cp /opt/ocellus-check/healthy.toml /etc/ocellus/ocellus.toml
systemctl restart ocellus
check "active again after the fix" 'wait_for "systemctl is-active -q ocellus" 60'
systemctl stop ocellus
check "stop: exit status 0 (SIGTERM handled)" '[ "$(show ExecMainStatus)" = "0" ] && [ "$(show Result)" = "success" ]'
check "offline retained after the stop" \
  'timeout 10 mosquitto_sub -h 127.0.0.1 -t ocellus/status -C 1 -W 10 | grep -qx offline'
journalctl -u ocellus -o short-monotonic --no-pager |
  grep -E "systemd\[1\]|watchdog|reload|SIGTERM|READY|connected" >/opt/ocellus-check/journal
echo "$ok passed, $bad failed" >>$out
systemctl poweroff
PROBE
chmod +x "$M/opt/ocellus-check/probe.sh"
cp "$BASE/ocellus.toml" "$M/opt/ocellus-check/healthy.toml"
cat >"$M/etc/systemd/system/ocellus-probe.service" <<'EOF'
[Unit]
Description=ocellus check under a real systemd
After=ocellus.service mosquitto.service
[Service]
Type=oneshot
ExecStart=/opt/ocellus-check/probe.sh
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/ocellus-probe.service "$M/etc/systemd/system/multi-user.target.wants/ocellus-probe.service"

timeout 600 systemd-nspawn -D "$M" --boot --register=no --keep-unit --link-journal=no \
  --console=pipe >"$BASE/console.log" 2>&1 || true
echo "--- report"
cat "$M/opt/ocellus-check/report" 2>/dev/null || { tail -40 "$BASE/console.log"; exit 1; }
echo "--- journal (last lines)"
cat "$M/opt/ocellus-check/journal" 2>/dev/null || true
grep -q " 0 failed" "$M/opt/ocellus-check/report"

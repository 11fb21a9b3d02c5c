#!/usr/bin/env bash
# Soak the RTSP reconnect path for hours on a real box: runs tests/it/soak.rs (the real
# `ocellus run`, a private mosquitto, a gst-rtsp-server process stopped cleanly and
# killed in turn, a UDP and a TCP camera) in release mode, for as long as asked, and
# prints its measurements as JSON: reconnect time of each camera after each of the
# server's returns, threads / descriptors / RSS after the first and the last cycle,
# status changes and events seen during the flapping.
#
#   scripts/soak.sh                 # one hour
#   scripts/soak.sh 28800           # eight hours
#   OCELLUS_SOAK_CYCLES=500 scripts/soak.sh 0    # a number of cycles instead
#
# Knobs (environment): OCELLUS_SOAK_SECONDS (the first argument sets it; 0 = use
# OCELLUS_SOAK_CYCLES), OCELLUS_SOAK_CYCLES (default 20), OCELLUS_SOAK_DOWN_MS (how long
# the server stays down once both cameras noticed, default 1000), OCELLUS_SOAK_UP_MS
# (how long the streams flow before each sample, default 1000), OCELLUS_SOAK_JSON
# (where the JSON goes; default target/soak/soak-<time>.json), OCELLUS_SOAK_MALLOC=plain
# (glibc's allocator defaults instead of the systemd unit's MALLOC_* settings; expect
# the RSS bound to fail then), OCELLUS_SOAK_RELEASE=0 (the test profile's build, as
# CI runs it, instead of release). OCELLUS_SHARED and
# OCELLUS_MODELS as for the tests. Exit status: the test's (0 when every bound held).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-${OCELLUS_SOAK_SECONDS:-3600}}"
if [[ ! "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [SECONDS]   (0: run OCELLUS_SOAK_CYCLES cycles)" >&2
    exit 2
fi
if [[ "$seconds" == 0 ]]; then
    unset OCELLUS_SOAK_SECONDS
else
    export OCELLUS_SOAK_SECONDS="$seconds"
fi
json="${OCELLUS_SOAK_JSON:-target/soak/soak-$(date -u +%Y%m%dT%H%M%SZ).json}"
mkdir -p "$(dirname "$json")"
export OCELLUS_SOAK_JSON="$json"
log="${json%.json}.log"

echo "soak: ${OCELLUS_SOAK_SECONDS:-${OCELLUS_SOAK_CYCLES:-20} cycles}${OCELLUS_SOAK_SECONDS:+ s}; log $log" >&2
profile=(--release)
[[ "${OCELLUS_SOAK_RELEASE:-1}" == 0 ]] && profile=()
status=0
cargo test "${profile[@]}" --locked --test it -- --nocapture --exact \
    soak::rtsp_server_stopped_and_killed_20_times >"$log" 2>&1 || status=$?
grep -E '^\[soak\]' "$log" | tail -n 5 >&2 || true
if [[ -s "$json" ]]; then
    cat "$json"
else
    echo "soak: no measurements written (see $log)" >&2
    tail -n 40 "$log" >&2
fi
if [[ $status -ne 0 ]]; then
    grep -E -A3 'panicked at' "$log" | head -n 20 >&2 || true
fi
exit "$status"

#!/usr/bin/env bash
# The project's test command: setup, then format check, clippy and the tests.
# Extra arguments go to `cargo test` (e.g. `deploy/test.sh --test it harness_selftest::`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash deploy/setup.sh

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
# setup.sh installs chromium and chromedriver: the web interface's browser tests
# fail, rather than skip, when they are missing.
export OCELLUS_REQUIRE_BROWSER="${OCELLUS_REQUIRE_BROWSER:-1}"
export CARGO_TERM_PROGRESS_WHEN="${CARGO_TERM_PROGRESS_WHEN:-never}"

T0=$SECONDS
step() {
  echo "== $* (at $((SECONDS - T0)) s)"
  "$@"
}

step cargo fmt --check
step cargo clippy --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" step cargo doc --no-deps --locked --lib
step cargo test --locked --no-fail-fast "$@"
echo "== all checks passed in $((SECONDS - T0)) s"

//! The integration tests, one binary: each file under `tests/it/` is a module of it
//! (named for what it tests), `common` holds the helpers they share (its module doc
//! says what is where). One binary links GStreamer and ONNX Runtime once instead of
//! once per file.
//!
//! Run one file's tests with its module path: `cargo test --test it soak::`.
//!
//! The tests of every file run side by side on the harness's threads, in one
//! process: a test must not change the process's environment (`std::env::set_var`)
//! or other global state; one-time set-up is behind a `OnceLock` (ONNX Runtime's
//! environment, `engine::environment`, makes itself once). A test that needs a
//! process of its own runs this binary again with just itself
//! (`common::rerun_this_test`; `no_alloc`, whose allocator counts process-wide, and
//! `soak`'s RTSP server).

// A test crate: helpers are `pub` for its own modules, a failed step is a panic that
// says which, and `no_alloc` implements an allocator (unsafe by its nature).
#![allow(
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]
#![allow(unsafe_code)]

mod common;

mod alerts;
mod bad_input;
mod batching;
mod browser_selftest;
mod clip_parity;
mod control_limits;
mod decoders;
mod e2e_mqtt;
mod florence2_parity;
mod gate_cache;
mod generative;
mod ha_discovery;
mod harness_selftest;
mod http_api;
mod layers;
mod models_pull;
mod mqtt_limits;
mod no_alloc;
mod outage_60s;
mod outage_restart;
mod pacing;
mod paligemma_parity;
mod parsers_prop;
mod ppocr_real;
mod qwen2vl_parity;
mod reload;
mod remote;
mod rtsp;
mod runtime_queries;
mod secrets_http;
mod siglip_parity;
mod slow_limits;
mod smolvlm_parity;
mod snapshots;
mod soak;
mod systemd_unit;
mod teach;
mod tls_http;
mod two_daemons;
mod watchdog;
mod web_ui;

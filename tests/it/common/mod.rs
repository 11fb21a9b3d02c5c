//! Shared helpers for the integration tests (`use crate::common;`, then
//! `common::NAME` or `use common::*`: everything below is re-exported here). Also
//! built into the `pipeline` benchmark, which uses some of it.
//!
//! * `paths`: the shared read-only material (`shared_dir`, `models_dir`, `media`) and
//!   programs on `PATH` (`find_program`);
//! * `sync`: `wait_until` a condition, `lock` a mutex a panicking thread poisoned;
//! * `net`: `free_port`, `port_accepts`;
//! * `mosquitto`: a throw-away MQTT broker (`Mosquitto`);
//! * `mqtt`: a subscriber that records everything it sees (`MqttCollector`, `Msg`),
//!   `publish_once`, `client_id`, `mqtt_host_port`;
//! * `topics`: the contract's topics (`status_topic`, `cam_status`, `state_topic`,
//!   `events_topic`, `detections_topic`);
//! * `clips`: test clips made with `gst-launch-1.0`, killed and tried again when it
//!   hangs (`make_clip`, `media_clip`, `media_still`, `make_test_pattern_clip`,
//!   `run_gst_launch`);
//! * `probe`: what a clip holds (`probe_clip`, `discover_duration`);
//! * `process`: any child with a time limit (`wait_or_kill`) or killed on drop
//!   (`KillOnDrop`), and this test binary run again for one test (`rerun_this_test`);
//! * `daemon`: the daemon under test as a child process (`Daemon`, `ocellus_bin`,
//!   `ocellus_command`, `ocellus_run_command`, `write_config`);
//! * `cli`: one-shot runs of the binary with their output (`run_ocellus`, `Out`;
//!   `run_ocellus_on_a_terminal` with stderr a terminal);
//! * `conf`: config snippets (TOML strings and paths, the real models);
//! * `logs`: checks of the daemon's log (colour codes, levels, panics);
//! * `journal`: the outbox journal read back (`journaled`);
//! * `http`: a minimal HTTP client for the daemon's endpoints, and `metric_value` of
//!   a Prometheus scrape;
//! * `proxy`: a gated TCP proxy between the daemon and the broker (`GatedProxy`);
//! * `rtsp`: a real RTSP server in the test process (`RtspServer`);
//! * `tty`: a pseudo-terminal for a child's output (`Pty`);
//! * `webdriver`: a small synchronous W3C WebDriver client (`WebDriver`, `Element`);
//! * `browser`: a real headless Chromium for the web UI's tests (`Browser`: waiting,
//!   screenshots, the page's console errors and failed requests), skipped when it is
//!   not installed unless `OCELLUS_REQUIRE_BROWSER` is set;
//! * `parity`: comparing outputs with reference numbers;
//! * `hub_server`: a fake model hub (`common::hub_server::HubServer`, not re-exported);
//! * `vlm_server`: a served VLM speaking the OpenAI or Ollama dialect, strict about
//!   requests, with queued faults (`common::vlm_server::VlmServer`, not re-exported).
#![allow(dead_code)]

mod browser;
mod cli;
mod clips;
mod conf;
mod daemon;
mod http;
pub mod hub_server;
mod journal;
mod logs;
mod mosquitto;
mod mqtt;
mod net;
mod parity;
mod paths;
mod probe;
mod process;
mod proxy;
mod rtsp;
mod sync;
mod topics;
mod tty;
pub mod vlm_server;
mod webdriver;

// The benchmark uses only some of these.
#[allow(unused_imports)]
pub use browser::*;
#[allow(unused_imports)]
pub use cli::*;
#[allow(unused_imports)]
pub use clips::*;
#[allow(unused_imports)]
pub use conf::*;
#[allow(unused_imports)]
pub use daemon::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use journal::*;
#[allow(unused_imports)]
pub use logs::*;
#[allow(unused_imports)]
pub use mosquitto::*;
#[allow(unused_imports)]
pub use mqtt::*;
#[allow(unused_imports)]
pub use net::*;
#[allow(unused_imports)]
pub use parity::*;
#[allow(unused_imports)]
pub use paths::*;
#[allow(unused_imports)]
pub use probe::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use proxy::*;
#[allow(unused_imports)]
pub use rtsp::*;
#[allow(unused_imports)]
pub use sync::*;
#[allow(unused_imports)]
pub use topics::*;
#[allow(unused_imports)]
pub use tty::*;
#[allow(unused_imports)]
pub use webdriver::*;

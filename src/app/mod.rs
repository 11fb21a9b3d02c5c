//! App: the daemon as a user runs it. The config file as a whole ([`config`]), the
//! control surface shared by MQTT and HTTP ([`control`], [`http`]), the runtime status
//! ([`status`]), the web interface's live parts ([`web`]), and the supervisor that starts each camera's source, evaluator and
//! slow lane and serves query changes and reloads ([`run`], [`ask`]).

mod ask;
mod camera;
pub mod config;
pub mod control;
pub mod http;
mod run;
pub mod status;
mod supervisor;
pub mod teach;
pub mod teacher;
pub mod web;

pub use ask::{AskOptions, ask};
pub use run::{DaemonError, RunOptions, run};

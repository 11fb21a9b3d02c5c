//! The whole config: one section per stage, each the stage's own config type.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::app::http::HttpConfig;
use crate::cache::CacheConfig;
use crate::engine::EngineConfig;
use crate::model::ModelConfig;
use crate::publish::MqttConfig;
use crate::snapshot::SnapshotConfig;
use crate::source::{CameraConfig, DecodeConfig};
use crate::teach::TeachConfig;

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// File the config came from (for messages).
    pub path: PathBuf,
    /// The `[engine]` section: ONNX Runtime library, providers, threads, batching.
    pub engine: EngineConfig,
    /// The `[decode]` section: the video decoder of cameras that name none (already
    /// filled into each camera's `decoder`).
    pub decode: DecodeConfig,
    /// The `[cache]` section: the embedding and prompt caches' sizes.
    pub cache: CacheConfig,
    /// `None`: no broker; the daemon prints what it would publish.
    pub mqtt: Option<MqttConfig>,
    /// `None`: no HTTP endpoints.
    pub http: Option<HttpConfig>,
    /// The `[teach]` section: where taught queries' examples are kept (its `dir`
    /// always set after loading).
    pub teach: TeachConfig,
    /// `None`: no snapshots.
    pub snapshots: Option<SnapshotConfig>,
    /// The `[models.<name>]` tables, by name.
    pub models: BTreeMap<String, ModelConfig>,
    /// The `[[cameras]]`, each with its queries, in file order.
    pub cameras: Vec<CameraConfig>,
}

//! The whole config: one section per stage, each the stage's own config type.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::app::http::HttpConfig;
use crate::cache::CacheConfig;
use crate::engine::EngineConfig;
use crate::model::ModelConfig;
use crate::publish::MqttConfig;
use crate::snapshot::SnapshotConfig;
use crate::source::CameraConfig;

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// File the config came from (for messages).
    pub path: PathBuf,
    pub engine: EngineConfig,
    pub cache: CacheConfig,
    /// `None`: no broker; the daemon prints what it would publish.
    pub mqtt: Option<MqttConfig>,
    /// `None`: no HTTP endpoints.
    pub http: Option<HttpConfig>,
    /// `None`: no snapshots.
    pub snapshots: Option<SnapshotConfig>,
    pub models: BTreeMap<String, ModelConfig>,
    pub cameras: Vec<CameraConfig>,
}

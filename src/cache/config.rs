//! `[cache]`: how much memory the embedding cache may hold.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Image-embedding cache size in MiB, shared by every camera (0 turns it off).
    #[serde(default = "default_embeddings_mb")]
    pub embeddings_mb: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            embeddings_mb: default_embeddings_mb(),
        }
    }
}

fn default_embeddings_mb() -> u64 {
    32
}

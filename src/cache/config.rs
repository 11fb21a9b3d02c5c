//! `[cache]`: how much memory the embedding cache may hold.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Image-embedding cache size in MiB, shared by every camera (0 turns it off).
    #[serde(default = "default_embeddings_mb")]
    pub embeddings_mb: u64,
    /// Prompt-embedding cache size in MiB (text prompts, task prompts, questions),
    /// shared by every model (0 keeps none: each use embeds again).
    #[serde(default = "default_prompts_mb")]
    pub prompts_mb: u64,
}

impl CacheConfig {
    /// The prompt cache's bound in bytes.
    pub fn prompts_bytes(&self) -> usize {
        (self.prompts_mb as usize).saturating_mul(1 << 20)
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            embeddings_mb: default_embeddings_mb(),
            prompts_mb: default_prompts_mb(),
        }
    }
}

fn default_embeddings_mb() -> u64 {
    32
}

/// [`super::prompts::DEFAULT_MAX_BYTES`] in MiB.
fn default_prompts_mb() -> u64 {
    (super::prompts::DEFAULT_MAX_BYTES >> 20) as u64
}

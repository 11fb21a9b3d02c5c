//! Cache: image embeddings and prompt embeddings, so the encoders run only on what is
//! new.
//!
//! - [`EmbeddingCache`]: image embeddings keyed by (camera, model, region) and matched
//!   by frame fingerprint — the region's cells of the luma
//!   [`Thumb`](crate::kit::Thumb) — within the camera's change threshold, so a static
//!   scene or a camera that flips between two views skips the encoder. Bounded by
//!   bytes, least recently used out first.
//! - [`PromptCache`]: prompt embeddings (CLIP/SigLIP prompts, Florence-2 task
//!   prompts, SmolVLM question suffixes) keyed by the text model's files and the
//!   prompt, shared across config reloads (so a reload re-embeds only new prompts).
//!   Bounded by bytes (`[cache] prompts_mb`), least recently used out first.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ocellus::cache::{EmbeddingCache, Key};
//! use ocellus::kit::{Cells, Thumb};
//! let cache = EmbeddingCache::new(1 << 20);
//! let key = Key::new(&Arc::from("door"), &Arc::from("clip"), None);
//! let (thumb, area) = (Thumb::filled(90), Cells::ALL);
//! assert!(cache.get(&key, &thumb, &area, 0.02, Duration::ZERO, Duration::from_secs(30)).is_none());
//! cache.put(key.clone(), thumb, &area, 0.02, Duration::ZERO, Arc::from(vec![1.0f32, 0.0]));
//! let hit = cache.get(&key, &Thumb::filled(91), &area, 0.02, Duration::from_secs(1), Duration::from_secs(30));
//! assert_eq!(hit.as_deref(), Some(&[1.0f32, 0.0][..]));
//! assert_eq!((cache.hits(), cache.misses()), (1, 1));
//! ```

mod config;
mod embeddings;
mod prompts;

pub use config::CacheConfig;
pub use embeddings::{Embedding, EmbeddingCache, Key};
pub use prompts::{DEFAULT_MAX_BYTES as PROMPTS_DEFAULT_BYTES, PromptCache};

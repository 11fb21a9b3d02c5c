//! Prompt embeddings, keyed by the text model's file identity (path, size,
//! modification time) and the prompt: a reloaded config embeds only prompts it has
//! not seen, and a replaced model file is never mixed up with the old one. Shared by
//! every model that embeds text (CLIP/SigLIP prompts, Florence-2 task prompts,
//! SmolVLM question suffixes).
//!
//! Bounded by bytes ([`DEFAULT_MAX_BYTES`], `[cache] prompts_mb`), least recently
//! used out first (the `lru` crate: O(1) per use and per eviction, which a scan of a
//! hand-written cache would not be for tens of thousands of prompts). An entry's size
//! counts its floats, its key and its bookkeeping. Eviction only drops the cache's
//! reference: a query holding an embedding keeps it; a later use embeds it again.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

use super::embeddings::Embedding;

/// Default bound of the prompt cache: 32 MiB, as the image-embedding cache's. It
/// holds about 13,000 CLIP ViT-B prompts (512 floats), 6,000 SigLIP so400m ones, or
/// 500 Florence-2-base task prompts; a 350,000-label spec no longer keeps 300 MB.
pub const DEFAULT_MAX_BYTES: usize = 32 << 20;

/// What an entry costs besides its key and floats: the list node, the hash slot and
/// the `Arc` header.
const ENTRY_OVERHEAD: usize = 96;

/// Separates the model identity from the prompt in a key (a path has no NUL).
const SEP: char = '\0';

struct Inner {
    map: LruCache<String, Embedding>,
    bytes: usize,
}

pub struct PromptCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    /// Entries now (read without the lock, for the metrics).
    entries: AtomicUsize,
}

impl Default for PromptCache {
    /// A cache of [`DEFAULT_MAX_BYTES`].
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BYTES)
    }
}

impl PromptCache {
    /// A cache of at most `max_bytes` (0: keeps nothing; every use embeds).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::new(Inner {
                map: LruCache::unbounded(),
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            entries: AtomicUsize::new(0),
        }
    }

    /// The identity of a model file: path, size and modification time.
    pub fn model_id(file: &Path) -> String {
        let meta = std::fs::metadata(file).ok();
        let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
        let modified = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}:{size}:{modified}", file.display())
    }

    /// The cached embedding of `prompt` for model `model_id`, or `compute`'s (kept
    /// unless it alone is larger than the cache).
    pub fn get_or_insert<E>(
        &self,
        model_id: &str,
        prompt: &str,
        compute: impl FnOnce() -> Result<Embedding, E>,
    ) -> Result<Embedding, E> {
        let key = format!("{model_id}{SEP}{prompt}");
        if let Some(e) = self.lock().map.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let e = compute()?;
        tracing::debug!("prompt embedded: {:.80?}", prompt);
        self.insert(key, e.clone());
        Ok(e)
    }

    fn insert(&self, key: String, e: Embedding) {
        let size = entry_bytes(&key, &e);
        if size > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        if let Some((k, old)) = inner.map.push(key, e) {
            // The same key (computed twice at once) or an evicted one: either way gone.
            inner.bytes -= entry_bytes(&k, &old);
        }
        inner.bytes += size;
        let mut evicted = 0;
        while inner.bytes > self.max_bytes {
            let Some((k, old)) = inner.map.pop_lru() else {
                break;
            };
            inner.bytes -= entry_bytes(&k, &old);
            evicted += 1;
        }
        self.evictions.fetch_add(evicted, Ordering::Relaxed);
        self.entries.store(inner.map.len(), Ordering::Relaxed);
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Entries dropped for room.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Bytes held now (floats, keys and bookkeeping).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound given at creation.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Entries of model `model_id`.
    pub fn count(&self, model_id: &str) -> usize {
        let inner = self.lock();
        inner
            .map
            .iter()
            .filter(|(k, _)| k.split_once(SEP).is_some_and(|(m, _)| m == model_id))
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What an entry costs: its key, its floats and [`ENTRY_OVERHEAD`].
fn entry_bytes(key: &str, e: &Embedding) -> usize {
    key.len() + std::mem::size_of_val(&**e) + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn emb(v: f32, n: usize) -> Embedding {
        Arc::from(vec![v; n])
    }

    #[test]
    fn each_prompt_is_computed_once_per_model_file() {
        let c = PromptCache::default();
        let mut runs = 0;
        for _ in 0..3 {
            let e = c
                .get_or_insert::<()>("m1", "a red light", || {
                    runs += 1;
                    Ok(Arc::from(vec![1.0f32]))
                })
                .unwrap();
            assert_eq!(e[0], 1.0);
        }
        c.get_or_insert::<()>("m2", "a red light", || {
            runs += 1;
            Ok(Arc::from(vec![2.0f32]))
        })
        .unwrap();
        assert_eq!(runs, 2);
        assert_eq!((c.hits(), c.misses()), (2, 2));
        assert!(c.get_or_insert("m3", "x", || Err("failed")).is_err());
        assert_eq!((c.count("m1"), c.count("m2"), c.count("m3")), (1, 1, 0));
    }

    #[test]
    fn many_prompts_stay_within_the_bound_least_recently_used_out_first() {
        let one = entry_bytes(&format!("m{SEP}p00000"), &emb(0.0, 512));
        let c = PromptCache::new(100 * one);
        let mut held = Vec::new();
        for i in 0..10_000 {
            let e = c
                .get_or_insert::<()>("m", &format!("p{i:05}"), || Ok(emb(i as f32, 512)))
                .unwrap();
            if i < 3 {
                // A query holding its embeddings keeps them through any eviction.
                held.push(e);
            }
            // Keep "p00005" in use: it is never the least recently used.
            if i > 5 {
                c.get_or_insert::<()>("m", "p00005", || panic!("evicted while in use"))
                    .unwrap();
            }
        }
        assert_eq!(c.len(), 100);
        assert!(c.bytes() <= c.max_bytes());
        assert_eq!(c.evictions(), 10_000 - 100);
        assert_eq!(held[2][0], 2.0);
        // The oldest are gone: asking again embeds again.
        let mut again = false;
        c.get_or_insert::<()>("m", "p00000", || {
            again = true;
            Ok(emb(0.0, 512))
        })
        .unwrap();
        assert!(again);
    }

    #[test]
    fn a_zero_sized_cache_keeps_nothing_and_still_answers() {
        let c = PromptCache::new(0);
        for _ in 0..2 {
            let e = c.get_or_insert::<()>("m", "p", || Ok(emb(1.0, 4))).unwrap();
            assert_eq!(e[0], 1.0);
        }
        assert_eq!((c.misses(), c.len(), c.bytes()), (2, 0, 0));
    }
}

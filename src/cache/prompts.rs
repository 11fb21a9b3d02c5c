//! Prompt embeddings, kept for the life of the process and keyed by the text model's
//! file identity (path, size, modification time) and the prompt: a reloaded config
//! embeds only prompts it has not seen, and a replaced model file is never mixed up
//! with the old one.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::embeddings::Embedding;

#[derive(Default)]
pub struct PromptCache {
    map: Mutex<HashMap<(String, String), Embedding>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl PromptCache {
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

    /// The cached embedding of `prompt` for model `model_id`, or `compute`'s.
    pub fn get_or_insert<E>(
        &self,
        model_id: &str,
        prompt: &str,
        compute: impl FnOnce() -> Result<Embedding, E>,
    ) -> Result<Embedding, E> {
        let key = (model_id.to_string(), prompt.to_string());
        if let Some(e) = self.lock().get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let e = compute()?;
        tracing::debug!("prompt embedded: {prompt:?}");
        self.lock().insert(key, e.clone());
        Ok(e)
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Embedding>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

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
    }
}

//! The image-embedding cache (see the module docs of [`crate::cache`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::kit::{Cells, Thumb};

/// An embedding (unit length for dual encoders).
pub type Embedding = Arc<[f32]>;

/// Most entries kept for one (camera, model, region): enough for a camera that
/// cycles through a few views, small enough that a lookup scan stays short.
const PER_KEY: usize = 16;

/// (camera, model, region) an embedding belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    camera: Arc<str>,
    model: Arc<str>,
    /// The region's corners as bits (`f32` is not `Hash`).
    region: Option<[u32; 4]>,
}

impl Key {
    pub fn new(camera: &Arc<str>, model: &Arc<str>, region: Option<[f32; 4]>) -> Self {
        Self {
            camera: camera.clone(),
            model: model.clone(),
            region: region.map(|r| r.map(f32::to_bits)),
        }
    }
}

struct Entry {
    thumb: Thumb,
    /// Presentation time of the frame the embedding was computed from.
    pts: Duration,
    embedding: Embedding,
    /// Tick of the last use (LRU).
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Vec<Entry>>,
    bytes: usize,
    tick: u64,
}

/// Bounded, shared by every camera; see the module docs.
pub struct EmbeddingCache {
    max_bytes: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl EmbeddingCache {
    /// A cache of at most `max_bytes` (0: never stores anything).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The closest embedding of `key` whose fingerprint is within `tolerance` of
    /// `thumb` inside `area`, and which is at most `max_age` older than `pts` (an
    /// entry from a later `pts` — the stream restarted — does not count).
    pub fn get(
        &self,
        key: &Key,
        thumb: &Thumb,
        area: &Cells,
        tolerance: f32,
        pts: Duration,
        max_age: Duration,
    ) -> Option<Embedding> {
        if self.max_bytes == 0 {
            return None;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let found = inner.entries.get_mut(key).and_then(|list| {
            list.iter_mut()
                .filter(|e| e.pts <= pts && pts - e.pts <= max_age)
                .map(|e| (e.thumb.change(thumb, area), e))
                .filter(|(d, _)| *d < tolerance)
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, e)| {
                    e.used = tick;
                    e.embedding.clone()
                })
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores a fresh embedding. An entry of `key` within `tolerance` is replaced
    /// (a re-encode after `max_staleness` refreshes it); the least recently used
    /// entries go when the cache is over its size.
    pub fn put(
        &self,
        key: Key,
        thumb: Thumb,
        area: &Cells,
        tolerance: f32,
        pts: Duration,
        embedding: Embedding,
    ) {
        let size = entry_bytes(&embedding);
        if size > self.max_bytes {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = Entry {
            thumb,
            pts,
            embedding,
            used: tick,
        };
        let list = inner.entries.entry(key).or_default();
        let same = list
            .iter()
            .position(|e| e.thumb.change(&thumb, area) < tolerance)
            .or_else(|| {
                // Full for this key: replace its least recently used entry.
                (list.len() >= PER_KEY)
                    .then(|| list.iter().enumerate().min_by_key(|(_, e)| e.used))
                    .flatten()
                    .map(|(i, _)| i)
            });
        let freed = match same {
            Some(i) => entry_bytes(&std::mem::replace(&mut list[i], entry).embedding),
            None => {
                list.push(entry);
                0
            }
        };
        inner.bytes = inner.bytes + size - freed;
        while inner.bytes > self.max_bytes {
            if !evict_one(&mut inner) {
                break;
            }
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// What an entry costs: its embedding, its fingerprint and bookkeeping.
fn entry_bytes(e: &Embedding) -> usize {
    std::mem::size_of_val(&**e) + std::mem::size_of::<Entry>()
}

/// Removes the least recently used entry; false when empty.
fn evict_one(inner: &mut Inner) -> bool {
    let oldest = inner
        .entries
        .iter()
        .flat_map(|(k, list)| list.iter().enumerate().map(move |(i, e)| (e.used, k, i)))
        .min_by_key(|(used, _, _)| *used)
        .map(|(_, k, i)| (k.clone(), i));
    let Some((key, i)) = oldest else {
        return false;
    };
    if let Some(list) = inner.entries.get_mut(&key) {
        let gone = list.swap_remove(i);
        inner.bytes -= entry_bytes(&gone.embedding);
        if list.is_empty() {
            inner.entries.remove(&key);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(cam: &str) -> Key {
        Key::new(&Arc::from(cam), &Arc::from("clip"), None)
    }

    fn emb(v: f32) -> Embedding {
        Arc::from(vec![v; 4])
    }

    const T: f32 = 0.02;
    const AGE: Duration = Duration::from_secs(30);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_camera_flipping_between_two_views_hits_both() {
        let c = EmbeddingCache::new(1 << 20);
        let (a, b) = (Thumb::filled(10), Thumb::filled(200));
        let all = Cells::ALL;
        c.put(key("k"), a, &all, T, secs(0), emb(1.0));
        c.put(key("k"), b, &all, T, secs(1), emb(2.0));
        for s in 2..6 {
            let view = if s % 2 == 0 { &a } else { &b };
            let want = if s % 2 == 0 { 1.0 } else { 2.0 };
            assert_eq!(
                c.get(&key("k"), view, &all, T, secs(s), AGE).unwrap()[0],
                want
            );
        }
        assert_eq!((c.hits(), c.misses()), (4, 0));
        // Another camera, the same picture: not shared.
        assert!(c.get(&key("other"), &a, &all, T, secs(6), AGE).is_none());
    }

    #[test]
    fn entries_expire_and_a_refresh_replaces_its_entry() {
        let c = EmbeddingCache::new(1 << 20);
        let a = Thumb::filled(10);
        let all = Cells::ALL;
        c.put(key("k"), a, &all, T, secs(0), emb(1.0));
        assert!(c.get(&key("k"), &a, &all, T, secs(31), AGE).is_none());
        let before = c.bytes();
        c.put(key("k"), a, &all, T, secs(31), emb(3.0));
        assert_eq!(c.bytes(), before, "the refresh replaced the entry");
        assert_eq!(
            c.get(&key("k"), &a, &all, T, secs(32), AGE).unwrap()[0],
            3.0
        );
        // A restarted stream (time went backwards) does not see later entries.
        assert!(c.get(&key("k"), &a, &all, T, secs(1), AGE).is_none());
    }

    #[test]
    fn the_least_recently_used_entry_goes_first_when_full() {
        let one = entry_bytes(&emb(0.0));
        let c = EmbeddingCache::new(3 * one);
        let all = Cells::ALL;
        for (i, cam) in ["a", "b", "c"].iter().enumerate() {
            c.put(key(cam), Thumb::filled(1), &all, T, secs(0), emb(i as f32));
        }
        // Touch "a": "b" is now the least recently used.
        assert!(
            c.get(&key("a"), &Thumb::filled(1), &all, T, secs(0), AGE)
                .is_some()
        );
        c.put(key("d"), Thumb::filled(1), &all, T, secs(0), emb(9.0));
        assert_eq!(c.bytes(), 3 * one);
        assert_eq!(c.evictions(), 1);
        let present = |cam: &str| {
            c.get(&key(cam), &Thumb::filled(1), &all, T, secs(0), AGE)
                .is_some()
        };
        assert!(present("a") && !present("b") && present("c") && present("d"));
    }

    #[test]
    fn a_zero_sized_cache_stores_nothing() {
        let c = EmbeddingCache::new(0);
        c.put(
            key("k"),
            Thumb::filled(1),
            &Cells::ALL,
            T,
            secs(0),
            emb(1.0),
        );
        assert_eq!(c.bytes(), 0);
        assert!(
            c.get(&key("k"), &Thumb::filled(1), &Cells::ALL, T, secs(0), AGE)
                .is_none()
        );
    }
}

//! The bounded cache of unwrapped keys.
//!
//! Unwrapping an organization key may be a KMS round trip, and unwrapping a patient key is an AES
//! operation plus a key-store query: both are cached, per [`Keyring`](crate::Keyring), in an LRU with
//! a size limit and a time limit ([`KeyCacheConfig`]). An entry that is evicted, expires or is
//! invalidated is dropped, and the key types zeroize their material on drop (AES key schedules via
//! `aes-gcm`'s `zeroize` feature, derived subkeys in `Zeroizing`), unless an operation still holds it,
//! in which case it is zeroized when that operation ends.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;
use uuid::Uuid;

use crate::material::{OrgKeys, PatientKeys};

/// Limits of the key cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCacheConfig {
    /// Most keys held at once (organizations plus patients); the least recently used goes first.
    pub max_entries: usize,
    /// How long an unwrapped key may stay cached; also bounds how long another process may keep using
    /// a key version after a rotation started elsewhere.
    pub ttl: Duration,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        Self { max_entries: 10_000, ttl: Duration::from_secs(15 * 60) }
    }
}

/// Counters of key work, for tests, benchmarks and monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Keys unwrapped (master-key unwraps of organization keys plus organization-key unwraps of
    /// patient keys).
    pub unwraps: u64,
    /// Lookups answered by the cache.
    pub cache_hits: u64,
    /// Lookups that had to go to the key store.
    pub cache_misses: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CacheKey {
    Org(Uuid),
    Patient(Uuid, Uuid),
}

#[derive(Clone)]
pub(crate) enum Cached {
    Org(Arc<OrgKeys>),
    Patient(Arc<PatientKeys>),
}

pub(crate) struct KeyCache {
    ttl: Duration,
    entries: Mutex<LruCache<CacheKey, (Instant, Cached)>>,
    unwraps: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Bumped by every invalidation: a load that started before one must not store what it read.
    generation: AtomicU64,
}

impl KeyCache {
    pub(crate) fn new(config: KeyCacheConfig) -> Self {
        let cap = NonZeroUsize::new(config.max_entries.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            ttl: config.ttl,
            entries: Mutex::new(LruCache::new(cap)),
            unwraps: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<CacheKey, (Instant, Cached)>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn get(&self, key: CacheKey) -> Option<Cached> {
        let mut entries = self.lock();
        let hit = match entries.get(&key) {
            Some((at, v)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                entries.pop(&key);
                None
            }
            None => None,
        };
        drop(entries);
        let counter = if hit.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    pub(crate) fn put(&self, key: CacheKey, value: Cached) {
        self.lock().put(key, (Instant::now(), value));
    }

    /// The current generation; take it before loading keys from the store.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Stores keys loaded since `generation` unless an invalidation happened meanwhile (the load may
    /// have read keys a rotation has since replaced).
    pub(crate) fn put_loaded(&self, generation: u64, key: CacheKey, value: Cached) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::SeqCst) == generation {
            entries.put(key, (Instant::now(), value));
        }
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Drops an organization's keys and all its patients' keys.
    pub(crate) fn invalidate_org(&self, organization: Uuid) {
        let mut entries = self.lock();
        self.bump();
        let doomed: Vec<CacheKey> = entries
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| matches!(k, CacheKey::Org(o) | CacheKey::Patient(o, _) if *o == organization))
            .collect();
        for k in doomed {
            entries.pop(&k);
        }
    }

    pub(crate) fn invalidate(&self, key: CacheKey) {
        let mut entries = self.lock();
        self.bump();
        entries.pop(&key);
    }

    pub(crate) fn clear(&self) {
        let mut entries = self.lock();
        self.bump();
        entries.clear();
    }

    pub(crate) fn count_unwraps(&self, n: u64) {
        self.unwraps.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> KeyStats {
        KeyStats {
            unwraps: self.unwraps.load(Ordering::Relaxed),
            cache_hits: self.hits.load(Ordering::Relaxed),
            cache_misses: self.misses.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

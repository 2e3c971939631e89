//! A map from entity to what a job gathers for it, shared by the job's worker threads:
//! sharded by key, one lock per shard, so that two workers rarely wait on each other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::values::RowKey;

/// At most 256, so that a shard index fits a byte.
const SHARDS: usize = 64;

/// One shard: an ordinary hash map.
pub(crate) type Shard<V> = HashMap<RowKey, V, ahash::RandomState>;

/// Entities sharded by key, each shard an `S` (an ordinary [`Shard`] map unless a job needs
/// another layout). See the [module docs](self).
pub(crate) struct EntityShards<S> {
    /// Picks an entity's shard. Not the shards' own hasher: the keys of one shard would all
    /// share the hash bits that pick it, the bits a hash table picks its buckets with, so
    /// they would crowd into a 64th of each table's buckets and every lookup would compare
    /// keys along long probe sequences.
    shard_hasher: ahash::RandomState,
    shards: Vec<Mutex<S>>,
}

impl<V> EntityShards<Shard<V>> {
    /// Shards that are ordinary hash maps.
    pub(crate) fn new() -> Self {
        // Fixed seeds: the choice need not be secret, only spread.
        let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
        EntityShards::with_shards(|| HashMap::with_hasher(hasher.clone()))
    }

    /// Every entity and its value.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (RowKey, V)> {
        self.into_shards().flatten()
    }
}

impl<S> EntityShards<S> {
    /// Shards made by `make`.
    pub(crate) fn with_shards(make: impl FnMut() -> S) -> Self {
        EntityShards {
            shards: std::iter::repeat_with(make)
                .take(SHARDS)
                .map(Mutex::new)
                .collect(),
            shard_hasher: ahash::RandomState::with_seeds(9, 10, 11, 12),
        }
    }

    /// The shard that holds `key`, locked.
    pub(crate) fn shard(&self, key: &RowKey) -> MutexGuard<'_, S> {
        self.lock(self.shard_of(key))
    }

    /// The index of the shard that holds `key`.
    pub(crate) fn shard_of(&self, key: &RowKey) -> usize {
        self.shard_hasher.hash_one(key) as usize % SHARDS
    }

    /// Shard `i`, locked.
    pub(crate) fn lock(&self, i: usize) -> MutexGuard<'_, S> {
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `keys`' indices grouped by shard, for callers that lock each shard once for all of
    /// its keys.
    pub(crate) fn group(&self, keys: &[RowKey]) -> Grouped {
        let shards: Vec<u8> = keys.iter().map(|k| self.shard_of(k) as u8).collect();
        // A counting sort of the indices by shard.
        let mut starts = [0u32; SHARDS + 1];
        for &s in &shards {
            starts[s as usize + 1] += 1;
        }
        for i in 0..SHARDS {
            starts[i + 1] += starts[i];
        }
        let mut next = starts;
        let mut order = vec![0u32; keys.len()];
        for (i, &s) in shards.iter().enumerate() {
            order[next[s as usize] as usize] = i as u32;
            next[s as usize] += 1;
        }
        Grouped { starts, order }
    }

    /// The shards.
    pub(crate) fn into_shards(self) -> impl Iterator<Item = S> {
        (self.shards.into_iter()).map(|s| s.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Indices of keys grouped by the shard that holds them ([`EntityShards::group`]).
pub(crate) struct Grouped {
    /// Where each shard's indices start in `order`, and the end.
    starts: [u32; SHARDS + 1],
    /// The indices, shard by shard, each shard's in increasing order.
    order: Vec<u32>,
}

impl Grouped {
    /// Every shard holding some of the keys, with their indices.
    pub(crate) fn shards(&self) -> impl Iterator<Item = (usize, &[u32])> {
        (0..SHARDS)
            .map(|s| {
                (
                    s,
                    &self.order[self.starts[s] as usize..self.starts[s + 1] as usize],
                )
            })
            .filter(|(_, rows)| !rows.is_empty())
    }
}

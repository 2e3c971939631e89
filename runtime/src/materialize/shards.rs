//! A map from entity to what a job gathers for it, shared by the job's worker threads:
//! sharded by key, one lock per shard, so that two workers rarely wait on each other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::values::RowKey;

const SHARDS: usize = 64;

/// One shard: an ordinary hash map.
pub(crate) type Shard<V> = HashMap<RowKey, V, ahash::RandomState>;

/// Entities sharded by key. See the [module docs](self).
pub(crate) struct EntityShards<V> {
    /// Picks an entity's shard. Not the shards' own hasher: the keys of one shard would all
    /// share the hash bits that pick it, the bits a hash table picks its buckets with, so
    /// they would crowd into a 64th of each table's buckets and every lookup would compare
    /// keys along long probe sequences.
    shard_hasher: ahash::RandomState,
    shards: Vec<Mutex<Shard<V>>>,
}

impl<V> EntityShards<V> {
    pub(crate) fn new() -> Self {
        // Fixed seeds: the choice need not be secret, only spread.
        let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
        EntityShards {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(hasher.clone())))
                .collect(),
            shard_hasher: ahash::RandomState::with_seeds(9, 10, 11, 12),
        }
    }

    /// The shard that holds `key`, locked.
    pub(crate) fn shard(&self, key: &RowKey) -> MutexGuard<'_, Shard<V>> {
        let i = self.shard_hasher.hash_one(key) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every entity and its value.
    pub(crate) fn into_entries(self) -> impl Iterator<Item = (RowKey, V)> {
        self.shards
            .into_iter()
            .flat_map(|s| s.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

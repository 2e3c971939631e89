//! [`VersionTable`]: the entities of one shard of the newest rows, laid out for the lookup
//! every row makes.
//!
//! Every row of a materialization looks up the version its entity's newest row has so far,
//! and at 100k entities each lookup is a cache miss. So the version lives in the table's slot
//! beside the key's identity (32 bytes a slot, open addressing with linear probing, at most
//! half full), and the entities' keys and values apart, read only for the ~10% of rows that
//! may win. A slot names a single integer key by its value; any other key by its hash,
//! confirmed against the stored key. [`VersionTable::warm`] reads the first slot of many
//! lookups in a loop of independent loads, so that their cache misses overlap instead of
//! coming one after another.

use super::values::RowKey;
use crate::error::{Error, ErrorKind, Result};
use crate::online::FeatureValue;

/// A slot's `entity` when the slot is free.
const FREE: u32 = u32::MAX;

/// Slots a table starts with (a power of two).
const FIRST_SLOTS: usize = 16;

#[derive(Clone, Copy)]
struct Slot {
    /// The key's value when it is a single integer, its hash otherwise.
    id: u64,
    /// `(event_ts, created_ts)` of the entity's newest row so far.
    version: (i64, i64),
    /// Index into the entities, or [`FREE`].
    entity: u32,
}

const FREE_SLOT: Slot = Slot {
    id: 0,
    version: (0, 0),
    entity: FREE,
};

struct Entity {
    key: RowKey,
    values: Vec<FeatureValue>,
}

/// Where a key's lookups start: computed once per row, valid however the table grows.
#[derive(Clone, Copy)]
pub(super) struct Probe {
    id: u64,
    hash: u64,
}

/// One shard's entities: each one's version, key and feature values. See the
/// [module docs](self).
pub(super) struct VersionTable {
    /// A power of two long, at most half full.
    slots: Vec<Slot>,
    entities: Vec<Entity>,
    /// Whether some key is not a single integer: slots that name keys by their hash need the
    /// stored key to confirm a match.
    hashed: bool,
    hasher: ahash::RandomState,
}

/// A slot, as a lookup found it.
pub(super) type SlotIndex = usize;

impl VersionTable {
    pub(super) fn new() -> Self {
        VersionTable {
            slots: vec![FREE_SLOT; FIRST_SLOTS],
            entities: Vec::new(),
            hashed: false,
            // Fixed seeds: the choice need not be secret, only spread (and independent of the
            // hasher that picks a key's shard).
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
        }
    }

    /// Where `key`'s lookups start.
    pub(super) fn probe(&self, key: &RowKey) -> Probe {
        let hash = self.hasher.hash_one(key);
        let id = match key {
            RowKey::Int(v) => *v as u64,
            RowKey::Key(_) => hash,
        };
        Probe { id, hash }
    }

    /// Reads the first slot of each probe's lookup, in a loop of independent loads: the
    /// lookups that follow find those slots in the cache.
    pub(super) fn warm<'a>(&self, probes: impl IntoIterator<Item = &'a Probe>) {
        let seen =
            (probes.into_iter()).fold(0u32, |seen, p| seen ^ self.slots[self.home(p)].entity);
        std::hint::black_box(seen);
    }

    /// The slot of `key`'s entity (`probe` is [`Self::probe`]'s for `key`).
    pub(super) fn find(&self, key: &RowKey, probe: &Probe) -> Option<SlotIndex> {
        let mask = self.slots.len() - 1;
        let mut i = self.home(probe);
        loop {
            let slot = &self.slots[i];
            if slot.entity == FREE {
                return None;
            }
            if slot.id == probe.id && self.is_key(slot.entity, key) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The version held at `slot`.
    pub(super) fn version(&self, slot: SlotIndex) -> (i64, i64) {
        self.slots[slot].version
    }

    /// The values held at `slot`.
    pub(super) fn values(&self, slot: SlotIndex) -> &[FeatureValue] {
        &self.entities[self.slots[slot].entity as usize].values
    }

    /// Replaces the version at `slot`, and hands its values for the caller to replace.
    pub(super) fn replace(
        &mut self,
        slot: SlotIndex,
        version: (i64, i64),
    ) -> &mut Vec<FeatureValue> {
        let slot = &mut self.slots[slot];
        slot.version = version;
        &mut self.entities[slot.entity as usize].values
    }

    /// Adds an entity the table does not hold ([`Self::find`] found none).
    pub(super) fn insert(
        &mut self,
        key: RowKey,
        probe: &Probe,
        version: (i64, i64),
        values: Vec<FeatureValue>,
    ) -> Result<()> {
        let entity = u32::try_from(self.entities.len())
            .ok()
            .filter(|&e| e != FREE)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Unsupported,
                    "a materialization's window holds more than 4 billion entities in one of \
                     the 64 shards of its newest rows; materialize a shorter window \
                     (--start/--end) at a time",
                )
            })?;
        if 2 * (self.entities.len() + 1) > self.slots.len() {
            self.grow();
        }
        self.hashed |= matches!(key, RowKey::Key(_));
        self.entities.push(Entity { key, values });
        self.place(
            Slot {
                id: probe.id,
                version,
                entity,
            },
            probe.hash,
        );
        Ok(())
    }

    /// Every entity: its key, version and values.
    pub(super) fn into_entries(
        self,
    ) -> impl Iterator<Item = (RowKey, (i64, i64), Vec<FeatureValue>)> {
        let mut versions = vec![(0, 0); self.entities.len()];
        for slot in self.slots.iter().filter(|s| s.entity != FREE) {
            versions[slot.entity as usize] = slot.version;
        }
        (self.entities.into_iter())
            .zip(versions)
            .map(|(entity, version)| (entity.key, version, entity.values))
    }

    /// The slot a probe's lookup starts at: the hash's top bits (the table's length is a
    /// power of two), which multiplying by the golden ratio spreads.
    fn home(&self, probe: &Probe) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (probe.hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    /// Whether entity `entity` (whose slot's identity matched) has key `key`.
    fn is_key(&self, entity: u32, key: &RowKey) -> bool {
        // Integer keys are named by their value: equal identities are equal keys, unless
        // hashed keys share the table.
        (matches!(key, RowKey::Int(_)) && !self.hashed)
            || self.entities[entity as usize].key == *key
    }

    /// Puts `slot` in the first free slot from its home on.
    fn place(&mut self, slot: Slot, hash: u64) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(&Probe { id: slot.id, hash });
        while self.slots[i].entity != FREE {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Doubles the slots and places every entity again.
    fn grow(&mut self) {
        let doubled = vec![FREE_SLOT; 2 * self.slots.len()];
        let old = std::mem::replace(&mut self.slots, doubled);
        for slot in old.into_iter().filter(|s| s.entity != FREE) {
            let hash = self
                .hasher
                .hash_one(&self.entities[slot.entity as usize].key);
            self.place(slot, hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::online::{EntityKey, KeyValue};

    fn key(form: u8, v: i64) -> RowKey {
        match form {
            0 => RowKey::Int(v),
            // A string key whose text is the same number: a different entity.
            _ => RowKey::Key(EntityKey(vec![KeyValue::Utf8(v.to_string())])),
        }
    }

    proptest! {
        /// Lookups, inserts and replacements agree with a `HashMap` through growth, with
        /// integer and string keys in one table (a job has one form; the table must not
        /// depend on it), and keys that collide on the integer's value.
        #[test]
        fn agrees_with_a_hash_map(
            ops in proptest::collection::vec((0u8..2, -40i64..40, any::<i64>()), 0..600),
        ) {
            let mut table = VersionTable::new();
            let mut oracle: HashMap<RowKey, (i64, i64)> = HashMap::new();
            for (form, v, version) in ops {
                let key = key(form, v);
                let probe = table.probe(&key);
                table.warm([&probe]);
                let version = (version, v);
                match table.find(&key, &probe) {
                    Some(slot) => {
                        prop_assert_eq!(Some(&table.version(slot)), oracle.get(&key));
                        prop_assert_eq!(table.values(slot), &[FeatureValue::Int64(v)][..]);
                        if version > table.version(slot) {
                            let values = table.replace(slot, version);
                            values.clear();
                            values.push(FeatureValue::Int64(v));
                            oracle.insert(key, version);
                        }
                    }
                    None => {
                        prop_assert!(!oracle.contains_key(&key));
                        let values = vec![FeatureValue::Int64(v)];
                        table.insert(key.clone(), &probe, version, values).unwrap();
                        oracle.insert(key, version);
                    }
                }
            }
            let entries: HashMap<RowKey, (i64, i64)> =
                table.into_entries().map(|(k, version, _)| (k, version)).collect();
            prop_assert_eq!(entries, oracle);
        }
    }
}

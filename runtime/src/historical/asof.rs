//! The point-in-time join, as a pure function over keys and timestamps.
//!
//! For an entity row `(key, T)` the answer is the feature row with the same key and the
//! greatest `(event_ts, created_ts)` such that `event_ts <= T` and, with a TTL,
//! `event_ts >= T - ttl` — the same order the online store uses to decide which write wins,
//! so the online value at time `T` and the historical value at `T` are the same row.
//!
//! It scales by sorting, never by a cross product: feature rows are sorted once by
//! `(key, event_ts, created_ts)` (keys interned to dense ids first), and each entity row is
//! answered by a hash lookup of its key's run and a binary search in it: `O((F + E) log F)` time,
//! `O(F + E)` memory for indices.

use std::collections::HashMap;
use std::time::Duration;

use crate::online::EntityKey;

/// One feature row's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureRowKey {
    /// The entity.
    pub key: EntityKey,
    /// Event timestamp, µs.
    pub event_ts: i64,
    /// Created timestamp, µs.
    pub created_ts: i64,
}

/// For each `(key, T)` entity row, the index (into `features`) of the row a point-in-time join
/// takes, or `None`.
///
/// Among rows with equal `(event_ts, created_ts)` the one with the greatest index wins, so the
/// answer is deterministic for a given feature table scan order.
pub fn as_of_join<'k>(
    features: &[FeatureRowKey],
    entities: impl IntoIterator<Item = (&'k EntityKey, i64)>,
    ttl: Option<Duration>,
) -> Vec<Option<usize>> {
    // Keys become dense ids, so the sort compares plain integers in one contiguous array
    // instead of chasing each row's key through an index.
    let mut ids: HashMap<&EntityKey, u32, ahash::RandomState> =
        HashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4));
    let mut rows: Vec<(u32, i64, i64, u32)> = features
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let next = ids.len() as u32;
            let id = *ids.entry(&f.key).or_insert(next);
            (id, f.event_ts, f.created_ts, i as u32)
        })
        .collect();
    rows.sort_unstable();
    // The run of `rows` holding each id.
    let mut runs = vec![(0usize, 0usize); ids.len()];
    let mut start = 0;
    while start < rows.len() {
        let id = rows[start].0;
        let end = start + rows[start..].partition_point(|r| r.0 == id);
        runs[id as usize] = (start, end);
        start = end;
    }
    let ttl_us = ttl.map(crate::micros::duration);
    entities
        .into_iter()
        .map(|(key, t)| {
            let (start, end) = runs[*ids.get(key)? as usize];
            let run = &rows[start..end];
            // Rows with event_ts <= T form a prefix of the run; the last of them is the answer.
            let visible = run.partition_point(|r| r.1 <= t);
            let best = run[..visible].last()?;
            match ttl_us {
                Some(ttl) if best.1 < t.saturating_sub(ttl) => None,
                _ => Some(best.3 as usize),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The definition, literally: scan every feature row for every entity row.
    fn brute_force(
        features: &[FeatureRowKey],
        entities: &[(EntityKey, i64)],
        ttl: Option<Duration>,
    ) -> Vec<Option<usize>> {
        let ttl = ttl.map(|t| t.as_micros() as i64);
        entities
            .iter()
            .map(|(key, t)| {
                features
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.key == *key && f.event_ts <= *t)
                    .filter(|(_, f)| ttl.is_none_or(|ttl| f.event_ts >= t - ttl))
                    .max_by_key(|(i, f)| (f.event_ts, f.created_ts, *i))
                    .map(|(i, _)| i)
            })
            .collect()
    }

    fn key(k: u8) -> EntityKey {
        EntityKey::new([i64::from(k)])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Few keys and few distinct timestamps, so duplicate timestamps, created-ts ties,
        /// label times equal to feature times, TTL edges and missing entities all occur.
        #[test]
        fn the_join_equals_the_brute_force_definition(
            features in proptest::collection::vec((0u8..6, 0i64..20, 0i64..4), 0..80),
            entities in proptest::collection::vec((0u8..8, -2i64..24), 0..60),
            ttl in proptest::option::of(0u64..8),
        ) {
            let features: Vec<FeatureRowKey> = features
                .into_iter()
                .map(|(k, e, c)| FeatureRowKey { key: key(k), event_ts: e, created_ts: c })
                .collect();
            let entities: Vec<(EntityKey, i64)> = entities.into_iter().map(|(k, t)| (key(k), t)).collect();
            let ttl = ttl.map(Duration::from_micros);
            let queries = entities.iter().map(|(k, t)| (k, *t));
            prop_assert_eq!(as_of_join(&features, queries, ttl), brute_force(&features, &entities, ttl));
        }
    }

    #[test]
    fn ttl_edges_are_inclusive_and_later_rows_are_invisible() {
        let f = |e, c| FeatureRowKey {
            key: key(1),
            event_ts: e,
            created_ts: c,
        };
        let features = [f(10, 0), f(20, 1), f(20, 2), f(30, 0)];
        let ask = |t, ttl: Option<u64>| {
            as_of_join(&features, [(&key(1), t)], ttl.map(Duration::from_micros))[0]
        };
        assert_eq!(ask(9, None), None, "nothing at or before T");
        assert_eq!(
            ask(10, None),
            Some(0),
            "a label time equal to a feature time sees it"
        );
        assert_eq!(
            ask(25, None),
            Some(2),
            "created_ts breaks the tie at event_ts 20"
        );
        assert_eq!(ask(30, Some(10)), Some(3));
        assert_eq!(ask(29, Some(9)), Some(2), "event_ts == T - ttl is inside");
        assert_eq!(ask(29, Some(8)), None, "one µs older is outside");
        assert_eq!(
            as_of_join(&features, [(&key(2), 100)], None),
            vec![None],
            "unknown entity"
        );
    }
}

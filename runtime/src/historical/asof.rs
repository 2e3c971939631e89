//! The point-in-time join, as a pure function over keys and timestamps.
//!
//! For an entity row `(key, T)` the answer is the greatest feature row with the same key such
//! that `event_ts <= T` and, with a TTL, `event_ts >= T - ttl`, in **the order of rows the
//! online store uses to decide which write wins** (`online/row.rs`, "The order of rows"): the
//! greater `(event_ts, created_ts)`, and on an exact version tie the greater stored bytes. So
//! the online value at time `T` and the historical value at `T` are the same row, whatever
//! order the rows were scanned or written in.
//!
//! It scales by sorting, never by a cross product: feature rows are sorted once by
//! `(key, event_ts, created_ts)`, their keys given as dense integer ids by the caller (the
//! entity rows' keys numbered, see `filter`), and each entity row is answered by a binary
//! search for its `(key, T)`: `O((F + E) log F)` time, `O(F)` memory for the sort keys.
//! Version ties are rare, so their values are only looked at when the sort puts two rows of
//! the same key and version side by side: then the caller's comparator (which encodes the
//! rows' values) decides.

use std::cmp::Ordering;
use std::time::Duration;

/// One feature row as the join sorts it: the id of its key, its event and created
/// timestamps (µs) and its index among the feature rows.
pub type SortKey = (u32, i64, i64, u32);

/// For each `(key id, T)` entity row, the index of the feature row a point-in-time join
/// takes, or `None`; `features` holds each feature row's [`SortKey`] (in any order).
///
/// Among rows with equal key and `(event_ts, created_ts)`, `tie(i, j)` (over feature row
/// indices) says which is greater: it must be the order of their stored bytes, so that
/// the join takes the row the online store keeps. It is called only for such rows. Rows it
/// calls equal are the same values; of those the greatest index is taken. Its error is
/// returned as it is.
pub fn as_of_join<E>(
    mut features: Vec<SortKey>,
    entities: impl IntoIterator<Item = (u32, i64)>,
    ttl: Option<Duration>,
    mut tie: impl FnMut(usize, usize) -> Result<Ordering, E>,
) -> Result<Vec<Option<usize>>, E> {
    sort_in_two(&mut features);
    break_ties(&mut features, &mut tie)?;
    let ttl_us = ttl.map(crate::micros::duration);
    Ok(entities
        .into_iter()
        .map(|(id, t)| {
            // The rows of `id` with event_ts <= T end where `(id, T)` would be inserted; the
            // last of them is the answer.
            let end = features.partition_point(|r| (r.0, r.1) <= (id, t));
            let best = features[..end].last().filter(|r| r.0 == id)?;
            match ttl_us {
                Some(ttl) if best.1 < t.saturating_sub(ttl) => None,
                _ => Some(best.3 as usize),
            }
        })
        .collect())
}

/// Sorts `rows`, on two threads when they are many: the rows of the lower half of the key ids
/// are moved before the others (one pass, in place), then each part is sorted on a thread of
/// its own. Every row of the first part is less than every row of the second, so that is the
/// whole sorted, the same as one sort (rows are distinct: each has its own index).
fn sort_in_two(rows: &mut [SortKey]) {
    /// Below this many rows one sort is quicker than starting a thread.
    const TWO_FROM: usize = 1 << 16;
    let Some(max) = rows.iter().map(|r| r.0).max() else {
        return;
    };
    if rows.len() < TWO_FROM || crate::pipeline::cores() < 2 || max == 0 {
        rows.sort_unstable();
        return;
    }
    // Ids are dense and number the entity rows' keys: each half of them holds about half of
    // the rows.
    let split = max / 2 + 1;
    let mut low = 0;
    for i in 0..rows.len() {
        if rows[i].0 < split {
            rows.swap(i, low);
            low += 1;
        }
    }
    let (first, second) = rows.split_at_mut(low);
    std::thread::scope(|scope| {
        scope.spawn(|| first.sort_unstable());
        second.sort_unstable();
    });
}

/// Puts the greatest row (by `tie`, then by index) of each group of sorted `rows` with equal
/// `(id, event_ts, created_ts)` last in its group, where the join looks.
fn break_ties<E>(
    rows: &mut [(u32, i64, i64, u32)],
    tie: &mut impl FnMut(usize, usize) -> Result<Ordering, E>,
) -> Result<(), E> {
    let same =
        |a: &(u32, i64, i64, u32), b: &(u32, i64, i64, u32)| (a.0, a.1, a.2) == (b.0, b.1, b.2);
    let mut i = 1;
    while i < rows.len() {
        if !same(&rows[i - 1], &rows[i]) {
            i += 1;
            continue;
        }
        let start = i - 1;
        let mut end = i + 1;
        while end < rows.len() && same(&rows[start], &rows[end]) {
            end += 1;
        }
        // Indices ascend within the group: on equal values the later one wins.
        let mut best = start;
        for j in start + 1..end {
            if tie(rows[j].3 as usize, rows[best].3 as usize)? != Ordering::Less {
                best = j;
            }
        }
        rows.swap(best, end - 1);
        i = end + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::online::EntityKey;

    /// One feature row's key and version, as the tests state them.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct FeatureRowKey {
        key: EntityKey,
        event_ts: i64,
        created_ts: i64,
    }

    /// [`super::as_of_join`] over entity keys: the keys numbered in order of appearance (an
    /// entity key no feature row has gets an id of its own), as the caller does.
    fn as_of_join<'k, E>(
        features: &[FeatureRowKey],
        entities: impl IntoIterator<Item = (&'k EntityKey, i64)>,
        ttl: Option<Duration>,
        tie: impl FnMut(usize, usize) -> Result<Ordering, E>,
    ) -> Result<Vec<Option<usize>>, E> {
        let mut ids: HashMap<EntityKey, u32> = HashMap::new();
        let mut id = |key: &EntityKey| {
            let next = ids.len() as u32;
            *ids.entry(key.clone()).or_insert(next)
        };
        let rows = (features.iter().enumerate())
            .map(|(i, f)| (id(&f.key), f.event_ts, f.created_ts, i as u32))
            .collect();
        let entities: Vec<(u32, i64)> = (entities.into_iter())
            .map(|(key, t)| (id(key), t))
            .collect();
        super::as_of_join(rows, entities, ttl, tie)
    }

    /// The definition, literally: scan every feature row for every entity row.
    fn brute_force(
        features: &[FeatureRowKey],
        entities: &[(EntityKey, i64)],
        ttl: Option<Duration>,
        values: &[u8],
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
                    .max_by_key(|(i, f)| (f.event_ts, f.created_ts, values[*i], *i))
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
        /// exact version ties of different and of equal values, label times equal to feature
        /// times, TTL edges and missing entities all occur.
        #[test]
        fn the_join_equals_the_brute_force_definition(
            features in proptest::collection::vec((0u8..6, 0i64..20, 0i64..4, 0u8..3), 0..80),
            entities in proptest::collection::vec((0u8..8, -2i64..24), 0..60),
            ttl in proptest::option::of(0u64..8),
        ) {
            let values: Vec<u8> = features.iter().map(|f| f.3).collect();
            let features: Vec<FeatureRowKey> = features
                .into_iter()
                .map(|(k, e, c, _)| FeatureRowKey { key: key(k), event_ts: e, created_ts: c })
                .collect();
            let entities: Vec<(EntityKey, i64)> = entities.into_iter().map(|(k, t)| (key(k), t)).collect();
            let ttl = ttl.map(Duration::from_micros);
            let queries = entities.iter().map(|(k, t)| (k, *t));
            let mut calls = 0;
            let tie = |i: usize, j: usize| {
                calls += 1;
                assert_eq!(
                    (&features[i].key, features[i].event_ts, features[i].created_ts),
                    (&features[j].key, features[j].event_ts, features[j].created_ts),
                    "the comparator is only asked about version ties"
                );
                Ok::<_, ()>(values[i].cmp(&values[j]))
            };
            let got = as_of_join(&features, queries, ttl, tie).unwrap();
            prop_assert_eq!(got, brute_force(&features, &entities, ttl, &values));
            let versions: std::collections::HashSet<_> = features
                .iter()
                .map(|f| (&f.key, f.event_ts, f.created_ts))
                .collect();
            if versions.len() == features.len() {
                prop_assert_eq!(calls, 0, "no tie, no comparison");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Sorting in two parts on two threads gives the one sort's order, whatever the ids.
        #[test]
        fn sorting_in_two_is_one_sort(
            rows in proptest::collection::vec((0u32..40, -5i64..5, 0i64..3), 70_000..90_000),
            max in prop_oneof![Just(0u32), Just(1), Just(39)],
        ) {
            let mut rows: Vec<SortKey> = (rows.into_iter().enumerate())
                .map(|(i, (id, e, c))| (id.min(max), e, c, i as u32))
                .collect();
            let mut expected = rows.clone();
            expected.sort_unstable();
            sort_in_two(&mut rows);
            prop_assert_eq!(rows, expected);
        }
    }

    #[test]
    fn ties_are_broken_by_the_comparator_whatever_the_scan_order() {
        let f = |c| FeatureRowKey {
            key: key(1),
            event_ts: 10,
            created_ts: c,
        };
        // Rows 1, 2 and 3 tie on (10, 1); their values are 5, 9 and 7: row 2 wins, as it
        // would in any order of the rows.
        let features = [f(0), f(1), f(1), f(1), f(0)];
        let values = [100, 5, 9, 7, 100];
        let picks = as_of_join(&features, [(&key(1), 10), (&key(1), 9)], None, |i, j| {
            Ok::<_, ()>(values[i].cmp(&values[j]))
        });
        assert_eq!(picks, Ok(vec![Some(2), None]));
        let failed = as_of_join(&features, [(&key(1), 10)], None, |_, _| Err("no"));
        assert_eq!(failed, Err("no"), "the comparator's error is the join's");
    }

    #[test]
    fn ttl_edges_are_inclusive_and_later_rows_are_invisible() {
        let f = |e, c| FeatureRowKey {
            key: key(1),
            event_ts: e,
            created_ts: c,
        };
        let features = [f(10, 0), f(20, 1), f(20, 2), f(30, 0)];
        let join = |keys: &[(&EntityKey, i64)], ttl: Option<Duration>| {
            as_of_join(&features, keys.iter().copied(), ttl, |_, _| {
                Err::<Ordering, ()>(())
            })
            .expect("no version ties")
        };
        let ask = |t, ttl: Option<u64>| join(&[(&key(1), t)], ttl.map(Duration::from_micros))[0];
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
        assert_eq!(join(&[(&key(2), 100)], None), vec![None], "unknown entity");
    }
}

//! An aggregation at many label times, as one sliding pass over an entity's rows: the offline
//! (historical) computation, with no rescan per label.
//!
//! Rows are taken in `event_ts` order and label times in ascending order, so the window's rows
//! enter at its upper end and leave at its lower end, each once. States merge but do not
//! subtract, so the window is kept as a *two-stack queue* (the "SWAG" of Tangwongsan et al.):
//! new rows fold into one back state; when the oldest row must leave and the front stack is
//! empty, the back rows move to the front as suffix states (each the state of a row and every
//! newer row in front). A row then leaves by popping one suffix state, and the window's state
//! is the front top merged with the back state. Each row is folded twice and each label costs
//! one merge, whatever the window's length.
//!
//! The value is the one definition's (see the module docs of `aggregate`): the states hold the
//! same multiset of rows as a direct fold over the window, and states are equal for equal
//! multisets, so the result is the same bits.

use super::aggregation::Aggregation;
use super::state::{Output, State};
use crate::error::Result;
use crate::online::FeatureValue;

/// The window's rows as a queue of mergeable states.
struct TwoStacks<'v> {
    /// Suffix states: the top (last) holds the oldest row in front and all newer ones there.
    front: Vec<State>,
    /// Rows newer than every row in front, oldest first.
    back: Vec<(i64, i64, &'v FeatureValue)>,
    back_state: State,
    empty: State,
}

impl<'v> TwoStacks<'v> {
    fn push(&mut self, row: (i64, i64, &'v FeatureValue)) -> Result<()> {
        self.back_state.update(row.2, row.0, row.1)?;
        self.back.push(row);
        Ok(())
    }

    /// Removes the oldest row (there is one).
    fn pop(&mut self) -> Result<()> {
        if self.front.is_empty() {
            let mut suffix = self.empty.clone();
            for &(event_ts, created_ts, value) in self.back.iter().rev() {
                suffix.update(value, event_ts, created_ts)?;
                self.front.push(suffix.clone());
            }
            self.back.clear();
            self.back_state = self.empty.clone();
        }
        self.front.pop();
        Ok(())
    }

    fn value(&self) -> Result<Output> {
        match self.front.last() {
            None => self.back_state.evaluate(),
            Some(front) => {
                let mut state = front.clone();
                state.merge(&self.back_state)?;
                state.evaluate()
            }
        }
    }
}

/// The value of `aggregation` for one entity at each of `labels` (in any order; the answers
/// are in the order of `labels`), from the entity's rows `(event_ts, created_ts, value)` in
/// any order. A value that cannot be given (an integer sum out of the int64 range) is an error
/// for that label alone; a row of the wrong type fails the whole call.
pub fn values_at_labels(
    aggregation: &Aggregation,
    rows: &[(i64, i64, &FeatureValue)],
    labels: &[i64],
) -> Result<Vec<Result<Output>>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].0);
    let mut label_order: Vec<usize> = (0..labels.len()).collect();
    label_order.sort_by_key(|&i| labels[i]);
    let empty = aggregation.new_state();
    let mut window = TwoStacks {
        front: Vec::new(),
        back: Vec::new(),
        back_state: empty.clone(),
        empty,
    };
    let (mut entered, mut left) = (0, 0);
    let mut out: Vec<Option<Result<Output>>> = (0..labels.len()).map(|_| None).collect();
    for li in label_order {
        let t = labels[li];
        while entered < order.len() && rows[order[entered]].0 <= t {
            window.push(rows[order[entered]])?;
            entered += 1;
        }
        while left < entered && !aggregation.window.contains(t, rows[order[left]].0) {
            window.pop()?;
            left += 1;
        }
        out[li] = Some(window.value());
    }
    Ok(out.into_iter().flatten().collect())
}

//! The one byte encoding of a [`State`]: equal states give equal bytes, and
//! `decode(encode(s)) == s`.
//!
//! ```text
//! [ format = 1 ][ tag ][ payload ]
//! ```
//!
//! Integers are fixed-width little-endian; byte strings are a `u32` length and the bytes.
//! Payloads by tag:
//!
//! | tag | state | payload |
//! |-----|-------|---------|
//! | 1 | count | `n: u64` |
//! | 2 | integer sum | `n: u64`, `sum: i128` |
//! | 3 | sum/mean/variance/stddev of floats and integers | function tag `u8`, `n: u64`, flags `u8` (1 NaN, 2 +inf, 4 −inf, 8 all −0.0), sum, then for variance/stddev the sum of squares; each sum as the minimal two's-complement bytes of its integer (units 2^-1074 and 2^-2148) |
//! | 4 / 5 | min / max | `0`, or `1` and the value's canonical bytes |
//! | 6 | last / last_n | `k: u32`, count `u32`, rows ascending by `(event_ts: i64, created_ts: i64, value bytes)` |
//! | 7 | count_distinct | count `u32`, canonical value bytes, strictly ascending |
//! | 8 | approx_count_distinct | 4096 registers, one byte each (0 to 53) |
//!
//! The state of a function is already canonical (exact sums are normalized, sets and rows are
//! sorted), so the bytes are a function of the state alone. Decoding refuses every other
//! spelling: unknown format or tag, trailing bytes, unsorted rows or sets, non-minimal sums,
//! out-of-range registers.

use std::collections::BTreeMap;

use super::exact_sum::{ExactSum, Scale, bad_state};
use super::function::{Function, MAX_LAST_N};
use super::hll::{Hll, M};
use super::state::{Kind, Moments, Specials, State};
use super::value::from_canonical_bytes;
use crate::error::Result;
use crate::online::FeatureValue;

/// The format byte written first; bump it (and keep reading the old one) when a payload
/// changes.
pub const FORMAT: u8 = 1;

const COUNT: u8 = 1;
const INT_SUM: u8 = 2;
const MOMENTS: u8 = 3;
const MIN: u8 = 4;
const MAX: u8 = 5;
const LAST: u8 = 6;
const DISTINCT: u8 = 7;
const HLL: u8 = 8;

fn function_tag(f: Function) -> u8 {
    match f {
        Function::Sum => 1,
        Function::Mean => 2,
        Function::Variance => 3,
        _ => 4, // stddev, the only other function with moments
    }
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// The canonical bytes of a state.
pub fn encode(state: &State) -> Vec<u8> {
    let mut out = vec![FORMAT];
    match &state.0 {
        Kind::Count(n) => {
            out.push(COUNT);
            out.extend(n.to_le_bytes());
        }
        Kind::IntSum { n, sum } => {
            out.push(INT_SUM);
            out.extend(n.to_le_bytes());
            out.extend(sum.to_le_bytes());
        }
        Kind::Moments(f, m) => {
            out.push(MOMENTS);
            out.push(function_tag(*f));
            out.extend(m.n.to_le_bytes());
            let flags = u8::from(m.specials.nan)
                | u8::from(m.specials.pos_inf) << 1
                | u8::from(m.specials.neg_inf) << 2
                | u8::from(m.all_negative_zero) << 3;
            out.push(flags);
            m.sum.encode(&mut out);
            if let Some(s) = &m.squares {
                s.encode(&mut out);
            }
        }
        Kind::Min(v) | Kind::Max(v) => {
            out.push(if matches!(state.0, Kind::Min(_)) {
                MIN
            } else {
                MAX
            });
            match v {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    put_bytes(&mut out, &super::value::canonical_bytes(v));
                }
            }
        }
        Kind::Last(f, rows) => {
            out.push(LAST);
            let k = match f {
                Function::LastN(k) => *k,
                _ => 0, // `last`
            };
            out.extend(k.to_le_bytes());
            out.extend((rows.len() as u32).to_le_bytes());
            for (e, c, v) in rows {
                out.extend(e.to_le_bytes());
                out.extend(c.to_le_bytes());
                put_bytes(&mut out, v);
            }
        }
        Kind::Distinct(set) => {
            out.push(DISTINCT);
            out.extend((set.len() as u32).to_le_bytes());
            for v in set.keys() {
                put_bytes(&mut out, v);
            }
        }
        Kind::Hll(h) => {
            out.push(HLL);
            out.extend_from_slice(&h.registers);
        }
    }
    out
}

/// Reads the fixed-width and length-prefixed pieces the encodings are made of.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad_state("the bytes end early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().map_err(|_| bad_state("length"))?,
        ))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| bad_state("integer"))?,
        ))
    }
    pub(crate) fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Reads what [`encode`] wrote; any other bytes are an error naming what is wrong.
pub fn decode(bytes: &[u8]) -> Result<State> {
    let mut r = Reader(bytes);
    let format = r.u8()?;
    if format != FORMAT {
        return Err(bad_state(&format!(
            "format {format} is unknown (this version reads format {FORMAT})"
        )));
    }
    let state = match r.u8()? {
        COUNT => Kind::Count(r.u64()?),
        INT_SUM => {
            let n = r.u64()?;
            let sum = i128::from_le_bytes(r.take(16)?.try_into().map_err(|_| bad_state("sum"))?);
            if n == 0 && sum != 0 {
                return Err(bad_state("an empty integer sum is not zero"));
            }
            Kind::IntSum { n, sum }
        }
        MOMENTS => {
            let function = match r.u8()? {
                1 => Function::Sum,
                2 => Function::Mean,
                3 => Function::Variance,
                4 => Function::Stddev,
                _ => return Err(bad_state("unknown function in a sum")),
            };
            let n = r.u64()?;
            let flags = r.u8()?;
            if flags > 15 {
                return Err(bad_state("unknown flags in a sum"));
            }
            let sum = ExactSum::decode(Scale::Linear, r.bytes()?)?;
            let squares = match function {
                Function::Variance | Function::Stddev => {
                    Some(ExactSum::decode(Scale::Square, r.bytes()?)?)
                }
                _ => None,
            };
            let moments = Moments {
                n,
                sum,
                squares,
                specials: Specials {
                    nan: flags & 1 != 0,
                    pos_inf: flags & 2 != 0,
                    neg_inf: flags & 4 != 0,
                },
                all_negative_zero: flags & 8 != 0,
            };
            let state = Kind::Moments(function, Box::new(moments));
            // An empty sum has one spelling: the state nothing was added to.
            if n == 0 && state != Kind::new(function, false) {
                return Err(bad_state("an empty sum is not empty"));
            }
            state
        }
        tag @ (MIN | MAX) => {
            let value = match r.u8()? {
                0 => None,
                1 => Some(value(r.bytes()?)?),
                _ => return Err(bad_state("a min/max marker is neither 0 nor 1")),
            };
            if tag == MIN {
                Kind::Min(value)
            } else {
                Kind::Max(value)
            }
        }
        LAST => {
            let k = r.u32()?;
            let function = match k {
                0 => Function::Last,
                1..=MAX_LAST_N => Function::LastN(k),
                _ => return Err(bad_state("k of last_n is out of range")),
            };
            let n = r.u32()? as usize;
            if n > k.max(1) as usize {
                return Err(bad_state("more rows than last_n keeps"));
            }
            let mut rows = Vec::with_capacity(n);
            for _ in 0..n {
                let row = (r.i64()?, r.i64()?, r.bytes()?.to_vec());
                value(&row.2)?;
                rows.push(row);
            }
            if rows.windows(2).any(|w| w[0] > w[1]) {
                return Err(bad_state("rows of last_n are not sorted"));
            }
            Kind::Last(function, rows)
        }
        DISTINCT => {
            let n = r.u32()? as usize;
            let mut set = BTreeMap::new();
            let mut previous: Option<&[u8]> = None;
            for _ in 0..n {
                let v = r.bytes()?;
                value(v)?;
                if previous.is_some_and(|p| p >= v) {
                    return Err(bad_state("distinct values are not strictly ascending"));
                }
                previous = Some(v);
                set.insert(v.to_vec(), ());
            }
            Kind::Distinct(set)
        }
        HLL => {
            let registers = r.take(M)?;
            if registers.iter().any(|&x| x > 53) {
                return Err(bad_state("a HyperLogLog register is above 53"));
            }
            Kind::Hll(Hll {
                registers: registers.into(),
            })
        }
        tag => return Err(bad_state(&format!("unknown state tag {tag}"))),
    };
    if !r.0.is_empty() {
        return Err(bad_state("trailing bytes after the state"));
    }
    Ok(State(state))
}

fn value(bytes: &[u8]) -> Result<FeatureValue> {
    from_canonical_bytes(bytes)
}

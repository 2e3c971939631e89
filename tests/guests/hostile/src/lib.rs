//! # `hostile-guest`: a transform that misbehaves on demand
//!
//! One component whose behaviour is chosen per call by the non-nullable `int32` input column
//! `mode` (the value in row 0; a batch of 0 rows is mode [`OK`]). Its one declared output is
//! `out: int64`, non-nullable. The host's tests use it to check that every failure is
//! contained and reported, and that the host keeps serving afterwards.
//!
//! | Mode | Constant | Behaviour |
//! |---|---|---|
//! | 0 | [`OK`] | returns `out` = 1 in every row |
//! | 1 | [`INFINITE_LOOP`] | never returns (the host's deadline must stop it) |
//! | 2 | [`MEMORY_BOMB`] | allocates and touches 1 MiB blocks until allocation fails (a trap at the host's memory cap) |
//! | 3 | [`PANIC`] | panics: a trap (`panic = "abort"`) |
//! | 4 | [`STACK_OVERFLOW`] | unbounded recursion: a stack-overflow trap |
//! | 5 | [`WRONG_ROW_COUNT`] | returns `num_rows + 1` rows |
//! | 6 | [`WRONG_TYPE`] | returns `out` as float64 |
//! | 7 | [`EXTRA_COLUMN`] | returns `out` and an undeclared column `extra: int64` |
//! | 8 | [`BATCH_ERROR`] | returns `Err(transform-error)` with column `mode` and row 0 |
//! | 9 | [`PRINTS`] | prints a line to stdout and one to stderr, then behaves like [`OK`] |
//! | 10 | [`AMBIENT`] | reads what a sandbox must fake, see below |
//! | 11 | [`SLEEP`] | sleeps for a minute (a host-side wait no epoch deadline can interrupt) |
//!
//! Any other mode is a batch-level error naming the column `mode`.
//!
//! Mode [`AMBIENT`] returns, in `out` (rows past the 4th are 0; pass at least 4 rows):
//! - row 0: seconds since the Unix epoch from `SystemTime::now()` (the wall clock);
//! - row 1: a `u64` (as `i64` bits) from `RandomState::new()` hashing a constant, which seeds
//!   from WASI random;
//! - row 2: the number of environment variables;
//! - row 3: 1 when `std::fs::read_dir("/")` succeeds, else 0.
//!
//! so the host can assert its stand-ins are deterministic (same values on every run) and that
//! there is no filesystem and no environment.
//!
//! Build: `cargo build --profile guest --target wasm32-wasip2 -p hostile-guest` (the
//! `skewless-test-components` crate does it for the tests).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use skewless_guest::{
    Batch, BatchBuilder, DataType, Field, Float64Builder, Int64Builder, Signature, Transform,
    TransformError, export_transform,
};

/// Returns `out` = 1 in every row.
pub const OK: i32 = 0;
/// Never returns.
pub const INFINITE_LOOP: i32 = 1;
/// Allocates until allocation fails.
pub const MEMORY_BOMB: i32 = 2;
/// Panics.
pub const PANIC: i32 = 3;
/// Recurses until the stack overflows.
pub const STACK_OVERFLOW: i32 = 4;
/// Returns one row too many.
pub const WRONG_ROW_COUNT: i32 = 5;
/// Returns `out` as float64.
pub const WRONG_TYPE: i32 = 6;
/// Returns an undeclared column `extra`.
pub const EXTRA_COLUMN: i32 = 7;
/// Returns a batch-level error naming column `mode` and row 0.
pub const BATCH_ERROR: i32 = 8;
/// Prints to stdout and stderr, then succeeds.
pub const PRINTS: i32 = 9;
/// Reads the clock, random bytes, the environment and the filesystem.
pub const AMBIENT: i32 = 10;
/// Sleeps for 60 s through WASI's monotonic clock.
pub const SLEEP: i32 = 11;

/// The hostile transform.
#[derive(Debug)]
pub struct Hostile;

impl Transform for Hostile {
    fn signature() -> Signature {
        Signature::new("hostile", "1.0.0")
            .description("Test fixture: misbehaves as the `mode` column says")
            .input(Field::new("mode", DataType::Int32, false))
            .output(Field::new("out", DataType::Int64, false))
    }

    fn transform(input: &Batch) -> Result<Batch, TransformError> {
        let n = input.num_rows();
        let mode = input.int32("mode")?.values().first().copied().unwrap_or(OK);
        match mode {
            OK => ones(n),
            INFINITE_LOOP => {
                let mut i = 0u64;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            MEMORY_BOMB => {
                let mut blocks: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut block = vec![0u8; 1 << 20];
                    // Touch every page so the memory is really used.
                    for page in block.iter_mut().step_by(4096) {
                        *page = 1;
                    }
                    blocks.push(black_box(block));
                }
            }
            PANIC => panic!("hostile guest: mode 3 panics"),
            STACK_OVERFLOW => {
                let depth = recurse(0, black_box(u64::MAX));
                ones(n).map(|b| black_box((b, depth)).0)
            }
            WRONG_ROW_COUNT => ones(n + 1),
            WRONG_TYPE => {
                let mut out = Float64Builder::with_capacity(n);
                (0..n).for_each(|_| out.push_value(1.0));
                BatchBuilder::new(n).column("out", out).finish()
            }
            EXTRA_COLUMN => BatchBuilder::new(n)
                .column("out", Int64Builder::from_values(vec![1; n]))
                .column("extra", Int64Builder::from_values(vec![2; n]))
                .finish(),
            BATCH_ERROR => Err(TransformError::new("hostile guest: mode 8 fails the batch")
                .with_column("mode")
                .with_row(0)),
            PRINTS => {
                println!("hostile guest: mode 9 writes to stdout");
                eprintln!("hostile guest: mode 9 writes to stderr");
                ones(n)
            }
            AMBIENT => ambient(n),
            SLEEP => {
                std::thread::sleep(std::time::Duration::from_secs(60));
                ones(n)
            }
            other => Err(
                TransformError::new(format!("hostile guest: unknown mode {other}"))
                    .with_column("mode")
                    .with_row(0),
            ),
        }
    }
}

export_transform!(Hostile);

/// A batch of `rows` rows with `out` = 1.
fn ones(rows: usize) -> Result<Batch, TransformError> {
    BatchBuilder::new(rows)
        .column("out", Int64Builder::from_values(vec![1; rows]))
        .finish()
}

/// Recurses until the stack overflows. Only scalars live in each frame, so they stay in Wasm
/// locals, on the engine's call stack: the call stack overflows (a stack-overflow trap)
/// rather than Rust's shadow stack in linear memory (an out-of-bounds store). `stop` comes
/// from `black_box`, so the compiler cannot prove the base case unreachable, and the result
/// is mixed non-linearly, so the recursion cannot become a loop.
#[inline(never)]
fn recurse(depth: u64, stop: u64) -> u64 {
    if depth == stop {
        return depth;
    }
    let below = recurse(depth + 1, stop);
    below ^ (below >> 7) ^ depth
}

/// The ambient values of mode 10.
fn ambient(rows: usize) -> Result<Batch, TransformError> {
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(-1, |d| d.as_secs() as i64);
    let random = RandomState::new().hash_one(0x5eed_u64) as i64;
    let env_vars = std::env::vars_os().count() as i64;
    let filesystem = i64::from(std::fs::read_dir("/").is_ok());
    let mut values = vec![0; rows];
    for (slot, value) in values.iter_mut().zip([clock, random, env_vars, filesystem]) {
        *slot = value;
    }
    BatchBuilder::new(rows)
        .column("out", Int64Builder::from_values(values))
        .finish()
}

//! The sandbox a transform runs in: no capabilities, deterministic stand-ins, bounded memory.
//!
//! Components built from languages whose standard library imports WASI (Rust's `std`,
//! Python, JavaScript) need those imports satisfied to instantiate at all. The host links
//! WASI 0.2 but configures it so that nothing observable depends on the machine:
//! - no preopened directories (no filesystem), no network, no environment, no arguments,
//!   empty stdin;
//! - wall clock and monotonic clock fixed at zero (the Unix epoch);
//! - "secure" and "insecure" random from fixed seeds;
//! - stdout and stderr captured into a bounded buffer that the engine writes to the log
//!   after each call, tagged with the transform.
//!
//! Memory is capped per instance across *all* of its linear memories ([`MemoryLimiter`]):
//! `StoreLimits` caps each memory separately, and some language runtimes define several.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use wasmtime::ResourceLimiter;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError};
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView,
};

/// How many bytes of stdout + stderr a transform may write per call before the rest is
/// dropped (and the drop is logged). Output is for debugging, not a data channel.
const CAPTURED_OUTPUT_LIMIT: usize = 64 * 1024;

/// Per-store state: the WASI context and the memory limiter.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) output: CapturedOutput,
}

impl HostState {
    pub(crate) fn new(memory_limit: usize) -> Self {
        let output = CapturedOutput::default();
        let wasi = WasiCtx::builder()
            .stdout(output.stream("stdout"))
            .stderr(output.stream("stderr"))
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            // Arbitrary fixed seeds: what matters is that every instance gets the same bytes.
            .secure_random(Deterministic::new(b"skewless secure random".to_vec()))
            .insecure_random(Deterministic::new(b"skewless insecure random".to_vec()))
            .insecure_random_seed(0x5eed_5eed_5eed_5eed)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            output,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A clock that always reads zero: the Unix epoch for the wall clock, zero nanoseconds for
/// the monotonic clock.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The monotonic-clock interface as the linker names it (wasmtime-wasi 48 implements WASI
/// 0.2.12; guests importing an older 0.2.x resolve to it by semver).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces the monotonic clock's `subscribe-duration` and `subscribe-instant` with functions
/// that fail the call at once.
///
/// wasmtime-wasi implements them as real timers, and a guest blocking on one waits inside a
/// host call, where epoch interruption cannot reach it: `std::thread::sleep(1 hour)` would hold
/// a worker for an hour past its deadline. A transform has no reason to wait (its clock is
/// fixed anyway), so waiting is an error.
pub(crate) fn forbid_waiting(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |_, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            Err(wasmtime::Error::new(WaitForbidden))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |_, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            Err(wasmtime::Error::new(WaitForbidden))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The error a guest gets for trying to wait on a clock; the engine recognizes it.
#[derive(Debug)]
pub(crate) struct WaitForbidden;

impl std::fmt::Display for WaitForbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a transform may not sleep or wait on a clock")
    }
}

impl std::error::Error for WaitForbidden {}

/// The error a [`MemoryLimiter`] raises; the engine recognizes it to report
/// [`ErrorKind::MemoryLimitExceeded`](crate::ErrorKind::MemoryLimitExceeded).
#[derive(Debug)]
pub(crate) struct MemoryLimitHit {
    pub(crate) limit: usize,
    pub(crate) requested: usize,
}

impl std::fmt::Display for MemoryLimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "memory limit of {} bytes exceeded: the instance asked for {} bytes in all",
            self.limit, self.requested
        )
    }
}

impl std::error::Error for MemoryLimitHit {}

/// Caps the sum of all linear memories of an instance.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit: usize,
    total: usize,
}

impl MemoryLimiter {
    fn new(limit: usize) -> Self {
        MemoryLimiter { limit, total: 0 }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let requested = self.total - current + desired;
        if requested > self.limit {
            // An error (rather than `Ok(false)`) traps at once with a cause the engine can
            // recognize, instead of letting the guest's allocator fail in its own way.
            return Err(wasmtime::Error::new(MemoryLimitHit {
                limit: self.limit,
                requested,
            }));
        }
        self.total = requested;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a million is far beyond any real transform.
        Ok(desired <= 1_000_000)
    }
}

/// Stdout and stderr of one instance, buffered until the engine drains them into the log.
#[derive(Clone, Default)]
pub(crate) struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    /// (stream name, bytes) in the order written.
    chunks: Vec<(&'static str, Vec<u8>)>,
    bytes: usize,
    dropped: usize,
}

impl CapturedOutput {
    fn stream(&self, name: &'static str) -> CapturedStream {
        CapturedStream {
            name,
            output: self.clone(),
        }
    }

    fn append(&self, name: &'static str, bytes: &[u8]) {
        let mut captured = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = CAPTURED_OUTPUT_LIMIT.saturating_sub(captured.bytes);
        let kept = bytes.len().min(room);
        captured.dropped += bytes.len() - kept;
        if kept > 0 {
            captured.bytes += kept;
            match captured.chunks.last_mut() {
                Some((last, buf)) if *last == name => buf.extend_from_slice(&bytes[..kept]),
                _ => captured.chunks.push((name, bytes[..kept].to_vec())),
            }
        }
    }

    /// Takes what was written since the last drain: (stream, text) chunks and the number of
    /// bytes dropped over the limit.
    pub(crate) fn drain(&self) -> (Vec<(&'static str, String)>, usize) {
        let mut captured = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let chunks = std::mem::take(&mut captured.chunks)
            .into_iter()
            .map(|(name, bytes)| (name, String::from_utf8_lossy(&bytes).into_owned()))
            .collect();
        let dropped = std::mem::take(&mut captured.dropped);
        captured.bytes = 0;
        (chunks, dropped)
    }
}

/// One of the captured streams, as WASI sees it.
#[derive(Clone)]
struct CapturedStream {
    name: &'static str,
    output: CapturedOutput,
}

impl IsTerminal for CapturedStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedStream {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedStream {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.output.append(self.name, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always accept: bytes past the limit are dropped and counted, never an error that
        // would make a guest's `println!` panic.
        Ok(CAPTURED_OUTPUT_LIMIT)
    }
}

impl tokio::io::AsyncWrite for CapturedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.output.append(self.name, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

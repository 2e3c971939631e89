//! `skewless serve`: the online feature server over a feature repo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::EngineArgs;
use skewless_runtime::engine::TransformEngine;
use skewless_runtime::error::{Error, ErrorKind, Result};
use skewless_runtime::push::{PushOptions, PushService};
use skewless_runtime::registry::{FeatureRepo, ViewKind};
use skewless_runtime::serving::{DEFAULT_MAX_ROWS, OnlineServing};
use skewless_server::{AppState, Limits};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The feature repo: a folder with a `skewless.toml`, applied and materialized.
    #[arg(long, default_value = ".", value_name = "DIR")]
    repo: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:6566")]
    addr: SocketAddr,
    /// The most entity rows one request may carry.
    #[arg(long, default_value_t = DEFAULT_MAX_ROWS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    max_rows: u32,
    /// The largest request body, in bytes.
    #[arg(long, default_value_t = Limits::default().max_body_bytes)]
    max_body_bytes: usize,
    /// The deadline of one request, in milliseconds (component calls get the same deadline,
    /// or the global --deadline-ms if shorter).
    #[arg(long, value_name = "MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_ms: u64,
    /// The most feature requests answered at once; beyond, a request gets a 503 at once.
    #[arg(long, default_value_t = Limits::default().max_in_flight, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_in_flight: usize,
}

/// Loads the repo's views (refusing a component whose digest differs from the registry),
/// connects to the online store, and serves until Ctrl-C or SIGTERM.
pub(super) fn serve(engine_args: &EngineArgs, args: &ServeArgs) -> Result<()> {
    let repo = FeatureRepo::open(&args.repo)?;
    let registry = repo.applied()?;
    let request_timeout = Duration::from_millis(args.request_timeout_ms);
    let engine = TransformEngine::builder()
        .cache_dir(repo.state_dir().join("compiled"))
        .memory_limit(engine_args.memory_limit_mib.saturating_mul(1 << 20))
        .deadline(request_timeout.min(Duration::from_millis(engine_args.deadline_ms)))
        .build()?;
    let store = skewless_runtime::online::open_lazily(&repo.online_config())?;
    if let Err(e) = store.ping() {
        tracing::warn!(error = %e, "the online store does not answer yet; /ready reports 503 until it does");
    }
    let serving = OnlineServing::open(&repo, &registry, &engine, store.clone())?
        .with_max_rows(args.max_rows as usize);
    for (name, kind, digest) in serving.views() {
        let kind = match kind {
            ViewKind::Batch => "batch view",
            ViewKind::Request => "request-time view",
            ViewKind::Aggregate => "aggregate view",
        };
        eprintln!("loaded {kind} {name} ({digest})");
    }
    let mut state = AppState::new(
        serving,
        Limits {
            max_body_bytes: args.max_body_bytes,
            request_timeout,
            max_in_flight: args.max_in_flight,
        },
    );
    // Pushed rows left in the write-ahead log by a crash are replayed here, before serving.
    let push = match repo.spec().push_sources.is_empty() {
        true => None,
        false => {
            let options = PushOptions {
                observer: Some(state.metrics()),
                ..PushOptions::from_repo(&repo)?
            };
            let push = Arc::new(PushService::open(
                &repo, &registry, &engine, store, options,
            )?);
            for name in push.source_names() {
                eprintln!("accepting pushes to {name}");
            }
            state = state.with_push(push.clone());
            Some(push)
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("could not start the async runtime: {e}"),
            )
        })?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("could not listen on {}: {e}", args.addr),
                )
                .with_source(e)
            })?;
        let addr = listener.local_addr().unwrap_or(args.addr);
        eprintln!("serving on http://{addr} (POST /get-online-features; GET /openapi.json)");
        skewless_server::serve(
            listener,
            skewless_server::router(state),
            skewless_server::shutdown_signal(),
        )
        .await?;
        eprintln!("stopped: requests in flight finished");
        Ok::<(), Error>(())
    })?;
    // The last micro-batch of pushed rows is committed before the process ends.
    drop(push);
    Ok(())
}

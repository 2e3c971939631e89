//! `skewless stream`: feed a push source from a Redis stream until Ctrl-C or SIGTERM, which
//! stop it cleanly: what is buffered is committed and acknowledged, a batch read ahead and
//! not applied stays unacknowledged (it is read again at the next start), a one-line summary
//! is printed and the exit status is 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;

use skewless_runtime::error::{Error, ErrorKind, Result};
use skewless_runtime::push::PushOptions;
use skewless_runtime::registry::FeatureRepo;
use skewless_runtime::stream::{Consumer, RedisStreams, StreamOptions};

#[derive(Debug, Args)]
pub(super) struct StreamArgs {
    /// The feature repo: a folder with a `skewless.toml`, applied.
    #[arg(long, default_value = ".", value_name = "DIR")]
    repo: PathBuf,
    /// The push source fed (`[[push_source]]`).
    #[arg(long, value_name = "NAME")]
    push_source: String,
    /// The Redis server holding the stream.
    #[arg(long, value_name = "URL")]
    redis: String,
    /// The stream's key.
    #[arg(long, value_name = "KEY")]
    stream: String,
    /// The consumer group (created at the stream's start if missing).
    #[arg(long, value_name = "GROUP")]
    group: String,
    /// This consumer's name in the group: keep it across restarts, so that what it read and
    /// did not acknowledge is read again.
    #[arg(long, value_name = "NAME", default_value = "skewless")]
    consumer: String,
    /// The most messages read at once.
    #[arg(long, default_value_t = 1_000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    batch: usize,
    /// Take over the unacknowledged messages of another consumer of the group that has not
    /// read for this long (it died for good): they are committed once, under its position.
    /// `0` never does. Keep it well above the longest commit.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = claim_idle)]
    claim_idle: Duration,
}

fn claim_idle(text: &str) -> std::result::Result<Duration, String> {
    match text.trim() {
        "0" => Ok(Duration::ZERO),
        text => {
            skewless_runtime::registry::parse_duration(text).map_err(|e| e.message().to_owned())
        }
    }
}

pub(super) fn stream(args: &StreamArgs) -> Result<()> {
    let repo = FeatureRepo::open(&args.repo)?;
    let push = PushOptions::from_repo(&repo)?;
    let store = skewless_runtime::online::open_lazily(&repo.online_config())?;
    let source = RedisStreams::connect(&args.redis, &args.stream, &args.group, &args.consumer)?;
    let options = StreamOptions {
        batch: args.batch,
        wait: Duration::from_millis(200).min(push.commit_interval),
        commit_interval: push.commit_interval,
        max_rows: push.max_rows,
        claim_idle: args.claim_idle,
        hook: None,
    };
    let mut consumer = Consumer::open(
        repo.dir(),
        &args.push_source,
        store,
        Box::new(source),
        options,
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("could not start the signal handler: {e}"),
                )
            })?;
        std::thread::spawn(move || {
            runtime.block_on(skewless_server::shutdown_signal());
            stop.store(true, Ordering::Release);
        });
    }
    eprintln!(
        "consuming {} (group {}, consumer {}) into push source {}{}",
        args.stream,
        args.group,
        args.consumer,
        args.push_source,
        consumer
            .position()
            .map_or(String::new(), |p| format!(", committed up to {p}"))
    );
    // The consumer runs on a thread of its own and this one only waits for it: a signal
    // sent to the process is delivered to this (main) thread, so it never interrupts one of
    // the consumer's reads or writes (a socket read with a timeout fails with EINTR instead
    // of being restarted); the signal thread then asks the consumer to stop.
    let stats = std::thread::Builder::new()
        .name("stream-consumer".to_owned())
        .spawn(move || consumer.run(&|_| stop.load(Ordering::Acquire)))
        .map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                format!("could not start the consumer thread: {e}"),
            )
        })?
        .join()
        .map_err(|_| Error::new(ErrorKind::Internal, "the consumer panicked".to_owned()))??;
    eprintln!(
        "stopped: {} messages read, {} rows committed, {} re-deliveries skipped, {} dead-lettered, {} taken over from dead consumers",
        stats.read, stats.committed, stats.duplicates, stats.dead_letters, stats.claimed
    );
    Ok(())
}

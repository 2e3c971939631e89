//! What the binary's end-to-end tests share: the one-view feature repo they run on, running
//! the binary, one HTTP exchange with `skewless serve`, stopping a child by a signal.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use skewless_test_components::TRANSACTION_FEATURES;

/// Writes `dir/skewless.toml`: entity `user` (`user_id`, int64) and batch view `txn`
/// (`transaction-features` over `raw.transactions`, event time `event_ts`), with `ttl` when
/// given, on the default stores.
pub(crate) fn write_txn_repo(dir: &Path, project: &str, ttl: Option<&str>) {
    let ttl = ttl.map_or_else(String::new, |t| format!("ttl = \"{t}\"\n"));
    std::fs::write(
        dir.join("skewless.toml"),
        format!(
            r#"
[project]
name = "{project}"

[[entity]]
name = "user"
join_keys = [{{ name = "user_id", type = "int64" }}]

[[batch_view]]
name = "txn"
entities = ["user"]
source = "raw.transactions"
event_timestamp = "event_ts"
transform = "{TRANSACTION_FEATURES}"
{ttl}"#
        ),
    )
    .expect("skewless.toml written");
}

/// `skewless ARGS --repo REPO`, with the environment `envs` added.
pub(crate) fn skewless_with(repo: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skewless"))
        .args(args)
        .arg("--repo")
        .arg(repo)
        .envs(envs.iter().copied())
        .output()
        .expect("the binary runs")
}

/// `skewless ARGS --repo REPO`.
pub(crate) fn skewless(repo: &Path, args: &[&str]) -> Output {
    skewless_with(repo, args, &[])
}

/// The command's stdout, after checking that it succeeded (its stderr in the failure).
pub(crate) fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One HTTP/1.1 exchange on a fresh connection: the status and the body.
pub(crate) fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Seconds since the epoch, now.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `secs` since the epoch as `2026-11-24T10:00:00Z`.
pub(crate) fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("a time in range")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Sends `signal` (`-TERM`, `-INT`) to `child` and waits up to `within` for it to exit.
pub(crate) fn stop(child: &mut Child, signal: &str, within: Duration) -> ExitStatus {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < within,
            "the child did not stop within {within:?} of {signal}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

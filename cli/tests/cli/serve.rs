//! The `skewless` binary end to end on a feature repo: `ingest`, `apply`, `materialize` and
//! `get`, then `serve` on a real socket, answered over HTTP, and stopped by SIGTERM after the
//! requests in flight finish.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{http, ok, rfc3339, skewless, stop};

#[test]
fn repo_commands_then_serve_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    crate::common::write_txn_repo(repo, "cli", Some("7d"));
    // Yesterday for users 1 and 2, a month ago for user 3 (outside the 7-day TTL).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let day = 86_400;
    let csv = format!(
        "user_id,event_ts,amount,balance_before\n1,{},120.5,1000.0\n2,{},80.0,400.0\n3,{},9.0,50.0",
        rfc3339(now - day),
        rfc3339(now - day),
        rfc3339(now - 30 * day)
    );
    std::fs::write(repo.join("txns.csv"), csv + "\n").unwrap();
    let txns = repo.join("txns.csv");
    ok(&skewless(
        repo,
        &[
            "ingest",
            "raw.transactions",
            "--from",
            txns.to_str().unwrap(),
            "--create",
        ],
    ));
    ok(&skewless(repo, &["apply"]));
    ok(&skewless(repo, &["materialize", "--all"]));
    let got = ok(&skewless(repo, &["get", "txn", "1", "3"]));
    assert!(got.contains("present"), "{got}");
    assert!(got.contains("outside_max_age"), "{got}");

    let mut server = Command::new(env!("CARGO_BIN_EXE_skewless"))
        .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
        .arg(repo)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(server.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert_ne!(log.read_line(&mut line).unwrap(), 0, "serve exited early");
        if let Some(rest) = line.strip_prefix("serving on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert_eq!(http(&addr, "GET", "/ready", "").0, 200);
    let (status, body) = http(
        &addr,
        "POST",
        "/get-online-features",
        r#"{"features": ["txn:amount_log1p"], "entities": {"user_id": [1, 3, 4]}}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(r#""statuses":["PRESENT","OUTSIDE_MAX_AGE","NOT_FOUND"]"#),
        "{body}"
    );
    assert!(body.contains(&format!("{}", 120.5f64.ln_1p())), "{body}");
    let (status, body) = http(&addr, "POST", "/get-online-features", "{");
    assert_eq!(status, 400, "{body}");

    let status = stop(&mut server, "-TERM", Duration::from_secs(10));
    let mut rest = String::new();
    log.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}: {rest}");
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn serve_refuses_an_unapplied_repo_and_names_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("skewless.toml"),
        "[project]\nname = \"x\"\n",
    )
    .unwrap();
    let out = skewless(dir.path(), &["serve", "--addr", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("run `skewless apply` first"), "{err}");
}

//! Every `skewless` command whose standard output is a pipe nobody reads any more
//! (`skewless show x.parquet | head -1`) exits with its usual status and no panic, and still
//! does its work: the output is discarded, the job is not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use skewless_test_components::TRANSACTION_FEATURES;

/// Runs `skewless args...` in `dir` with stdout a pipe whose read end is already closed, so
/// the first write fails with `BrokenPipe`.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let child = Command::new(env!("CARGO_BIN_EXE_skewless"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child.wait_with_output().expect("the binary ends")
}

/// Runs `skewless args...` in `dir` normally.
fn skewless(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skewless"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn assert_quiet_success(args: &[&str], out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "skewless {}: {stderr}",
        args.join(" ")
    );
    assert!(
        out.status.success(),
        "skewless {} with a closed stdout: exit {:?}: {stderr}",
        args.join(" "),
        out.status
    );
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runtime/ has a parent")
        .to_path_buf()
}

#[test]
fn every_command_survives_a_reader_that_went_away() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    crate::common::write_txn_repo(repo, "pipes", None);
    std::fs::write(
        repo.join("txns.csv"),
        "user_id,event_ts,amount,balance_before\n\
         1,2026-01-01T00:00:00Z,120.5,1000.0\n\
         2,2026-01-02T00:00:00Z,80.0,400.0\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("labels.csv"),
        "user_id,event_timestamp\n1,2026-02-01T00:00:00Z\n2,2026-02-01T00:00:00Z\n",
    )
    .unwrap();
    let order_features = workspace().join("examples").join("order-features");
    let build_dir = workspace()
        .join("target")
        .join("languages")
        .join("order-features");

    // In the order a user runs them: each must also have done its work.
    let commands: Vec<Vec<String>> = [
        vec!["--help"],
        vec!["inspect", TRANSACTION_FEATURES],
        vec!["inspect", TRANSACTION_FEATURES, "--json"],
        vec![
            "run",
            TRANSACTION_FEATURES,
            "--input",
            "txns.csv",
            "--output",
            "out.parquet",
        ],
        vec!["show", "out.parquet"],
        vec![
            "ingest",
            "raw.transactions",
            "--from",
            "txns.csv",
            "--create",
        ],
        vec!["plan"],
        vec!["apply"],
        vec!["materialize", "--all"],
        vec!["get", "txn", "1", "2"],
        vec![
            "historical",
            "--entities",
            "labels.csv",
            "--features",
            "txn:*",
            "--out",
            "train.parquet",
        ],
        vec!["expire", "--all"],
        vec!["new", "my-transform"],
        vec![
            "build",
            order_features.to_str().unwrap(),
            "--target-dir",
            build_dir.to_str().unwrap(),
        ],
    ]
    .into_iter()
    .map(|c| c.into_iter().map(str::to_owned).collect())
    .collect();
    for command in &commands {
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        let out = with_closed_stdout(repo, &args);
        assert_quiet_success(&args, &out);
    }

    // The work was done although nobody read a line.
    assert!(repo.join("out.parquet").is_file());
    assert!(repo.join("train.parquet").is_file());
    assert!(repo.join("my-transform").join("Cargo.toml").is_file());
    let got = skewless(repo, &["get", "txn", "1"]);
    let text = String::from_utf8_lossy(&got.stdout);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(text.contains("amount_log1p"), "{text}");

    // A failing command keeps its failure status (1) and its message on stderr.
    let out = with_closed_stdout(repo, &["get", "no_such_view", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no_such_view") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

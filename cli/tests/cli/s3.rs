//! The `skewless` binary end to end with the offline store on S3: SeaweedFS (`weed mini`,
//! started on free loopback ports) serves the Iceberg REST catalog and the S3 storage its
//! tables are on. `ingest`, `apply`, `materialize` (twice), `historical` now and as of a time
//! between the two, `serve`; then PyIceberg reads the same tables through the same catalog,
//! as an independent reader. The key pair comes from the environment and never appears in
//! any output, nor in the error of a wrong endpoint.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use skewless_tests::seaweedfs::{SECRET_ACCESS_KEY, SeaweedFs};

use crate::common::{http, now_secs, ok, rfc3339};

fn skewless(repo: &Path, weed: &SeaweedFs, args: &[&str]) -> Output {
    let out = crate::common::skewless_with(repo, args, &weed.credentials_env());
    for stream in [&out.stdout, &out.stderr] {
        assert!(
            !String::from_utf8_lossy(stream).contains(SECRET_ACCESS_KEY),
            "{args:?} showed the secret key"
        );
    }
    out
}

/// `user_id -> amount_log1p` of a training set written by `skewless historical`.
fn training_set(path: &Path) -> Vec<(i64, Option<f64>)> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let users = batch
            .column_by_name("user_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        let values = batch
            .column_by_name("amount_log1p")
            .unwrap()
            .as_primitive::<Float64Type>();
        for row in 0..batch.num_rows() {
            let value = (!values.is_null(row)).then(|| values.value(row));
            out.push((users.value(row), value));
        }
    }
    out.sort_by_key(|(user, _)| *user);
    out
}

#[test]
fn ingest_apply_materialize_historical_as_of_and_serve_on_seaweedfs() {
    let Some(weed) = SeaweedFs::start_or_skip("the S3 end-to-end test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    crate::common::write_txn_repo(repo, "s3", None);
    let mut toml = std::fs::read_to_string(repo.join("skewless.toml")).unwrap();
    toml.push('\n');
    toml.push_str(&weed.offline_toml());
    std::fs::write(repo.join("skewless.toml"), toml).unwrap();

    let day = 86_400;
    let now = now_secs();
    std::fs::write(
        repo.join("first.csv"),
        format!(
            "user_id,event_ts,amount,balance_before\n1,{t},120.5,1000.0\n2,{t},80.0,400.0\n",
            t = rfc3339(now - 2 * day)
        ),
    )
    .unwrap();
    let first = repo.join("first.csv");
    ok(&skewless(
        repo,
        &weed,
        &[
            "ingest",
            "raw.transactions",
            "--from",
            first.to_str().unwrap(),
            "--create",
        ],
    ));
    ok(&skewless(repo, &weed, &["apply"]));
    ok(&skewless(repo, &weed, &["materialize", "--all"]));
    // A time after the first materialization and before the second (whole seconds).
    let between = now_secs() + 1;
    while now_secs() <= between {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::write(
        repo.join("second.csv"),
        format!(
            "user_id,event_ts,amount,balance_before\n1,{},500.0,900.0\n",
            rfc3339(now - day)
        ),
    )
    .unwrap();
    let second = repo.join("second.csv");
    ok(&skewless(
        repo,
        &weed,
        &[
            "ingest",
            "raw.transactions",
            "--from",
            second.to_str().unwrap(),
        ],
    ));
    // Only the appended source row, read from the files its snapshot added.
    let incremental = ok(&skewless(
        repo,
        &weed,
        &["materialize", "txn", "--incremental"],
    ));
    assert!(incremental.contains(": 1 rows"), "{incremental}");

    // The data and metadata files are on S3 (the repo folder holds no warehouse).
    let objects = weed.objects("");
    assert!(
        objects
            .iter()
            .any(|o| o.starts_with("features/txn/data/") && o.ends_with(".parquet")),
        "{objects:?}"
    );
    assert!(
        objects
            .iter()
            .any(|o| o.starts_with("raw/transactions/metadata/")),
        "{objects:?}"
    );
    assert!(!repo.join(".skewless").join("warehouse").exists());

    std::fs::write(
        repo.join("labels.csv"),
        format!(
            "user_id,event_timestamp\n1,{t}\n2,{t}\n3,{t}\n",
            t = rfc3339(now)
        ),
    )
    .unwrap();
    let labels = repo.join("labels.csv");
    let historical = |out: &str, as_of: Option<&str>| {
        let out = repo.join(out);
        let mut args = vec![
            "historical",
            "--entities",
            labels.to_str().unwrap(),
            "--features",
            "txn:amount_log1p",
            "--out",
            out.to_str().unwrap(),
        ];
        if let Some(as_of) = as_of {
            args.extend(["--as-of", as_of]);
        }
        ok(&skewless(repo, &weed, &args));
        training_set(&out)
    };
    assert_eq!(
        historical("now.parquet", None),
        [
            (1, Some(500f64.ln_1p())),
            (2, Some(80f64.ln_1p())),
            (3, None)
        ]
    );
    assert_eq!(
        historical("then.parquet", Some(&rfc3339(between))),
        [
            (1, Some(120.5f64.ln_1p())),
            (2, Some(80f64.ln_1p())),
            (3, None)
        ]
    );

    let mut server = Command::new(env!("CARGO_BIN_EXE_skewless"))
        .args(["serve", "--addr", "127.0.0.1:0", "--repo"])
        .arg(repo)
        .envs(weed.credentials_env())
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
        r#"{"features": ["txn:amount_log1p"], "entities": {"user_id": [1, 2]}}"#,
    );
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&format!("{}", 500f64.ln_1p())), "{body}");
    assert!(body.contains(&format!("{}", 80f64.ln_1p())), "{body}");

    // PyIceberg, through the same REST catalog and S3, reads what skewless wrote.
    if let Some(python) = skewless_tests::python::python_or_skip("PyIceberg on SeaweedFS") {
        let read = |table: &str| -> serde_json::Value {
            let output = Command::new(&python)
                .arg(
                    skewless_tests::languages::workspace()
                        .join("tests")
                        .join("python")
                        .join("iceberg_read.py"),
                )
                .args([
                    &weed.catalog_uri(),
                    &weed.warehouse(),
                    table,
                    "user_id",
                    "event_ts",
                ])
                .env("S3_ENDPOINT", weed.s3_endpoint())
                .envs(weed.credentials_env())
                .output()
                .unwrap();
            let text = ok(&output);
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        };
        let micros = |secs: i64| serde_json::json!(secs * 1_000_000);
        for table in ["raw.transactions", "features.txn"] {
            let current = read(table);
            let (_, snapshot) = current.as_object().unwrap().iter().next().unwrap();
            assert_eq!(snapshot["rows"], 3, "{table}: {snapshot}");
            assert_eq!(
                snapshot["pairs"],
                serde_json::json!([
                    [1, micros(now - 2 * day)],
                    [1, micros(now - day)],
                    [2, micros(now - 2 * day)]
                ]),
                "{table}: {snapshot}"
            );
        }
    }
}

#[test]
fn a_wrong_s3_endpoint_is_named_without_the_secret() {
    let Some(weed) = SeaweedFs::start_or_skip("the S3 endpoint error test") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    crate::common::write_txn_repo(repo, "s3", None);
    // A loopback port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{dead}");
    let toml = std::fs::read_to_string(repo.join("skewless.toml")).unwrap()
        + "\n"
        + &weed.offline_toml().replace(&weed.s3_endpoint(), &dead);
    std::fs::write(repo.join("skewless.toml"), toml).unwrap();
    std::fs::write(
        repo.join("t.csv"),
        "user_id,event_ts,amount,balance_before\n1,2026-01-01T00:00:00Z,1.0,2.0\n",
    )
    .unwrap();
    let t = repo.join("t.csv");
    let out = skewless(
        repo,
        &weed,
        &[
            "ingest",
            "raw.transactions",
            "--from",
            t.to_str().unwrap(),
            "--create",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&dead), "{err}");
    assert!(err.contains("S3"), "{err}");
}

//! The offline store on SeaweedFS (`weed mini` on free loopback ports): its Iceberg REST
//! catalog, the tables on its S3. What only this backend has: wrong endpoints and keys named
//! without their secrets, and files deleted on S3 by snapshot expiry. The behaviour every
//! catalog shares is in `offline.rs` (`on_every_catalog!`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use skewless_runtime::ErrorKind;
use skewless_runtime::offline::{OfflineConfig, OfflineStore, ScanOptions, Secret, TableName};
use skewless_tests::seaweedfs::{ACCESS_KEY_ID, SECRET_ACCESS_KEY, SeaweedFs};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn with_s3(
    config: OfflineConfig,
    edit: impl FnOnce(&mut skewless_runtime::offline::S3Settings),
) -> OfflineConfig {
    match config {
        OfflineConfig::Rest {
            uri,
            warehouse,
            props,
            s3,
            login_with_s3_keys,
        } => {
            let mut s3 = s3.unwrap();
            edit(&mut s3);
            OfflineConfig::Rest {
                uri,
                warehouse,
                props,
                s3: Some(s3),
                login_with_s3_keys,
            }
        }
        other => other,
    }
}

/// Every way of getting the storage or the catalog wrong is an error at open that names
/// what is wrong and where, and never shows a secret.
#[test]
fn wrong_endpoints_and_keys_are_named_at_open_without_the_secrets() {
    let Some(weed) = SeaweedFs::start_or_skip("offline_s3 wrong endpoints") else {
        return;
    };
    let rt = runtime();
    let no_secret = |e: &skewless_runtime::Error| {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(SECRET_ACCESS_KEY), "{shown}");
        assert!(!shown.contains("wrong-secret-0123456789"), "{shown}");
    };

    // The right settings open.
    rt.block_on(OfflineStore::open(&weed.offline_config()))
        .unwrap();

    // S3 at a port nothing listens on: unavailable, naming the endpoint.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{dead}");
    let config = with_s3(weed.offline_config(), |s3| s3.endpoint = Some(dead.clone()));
    let e = rt.block_on(OfflineStore::open(&config)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.context_value("storage").unwrap().contains(&dead), "{e}");
    assert_eq!(e.context_value("warehouse"), Some("s3://warehouse"), "{e}");
    no_secret(&e);

    // A wrong secret for S3 (the catalog logged in with the right one): refused.
    let mut config = with_s3(weed.offline_config(), |s3| {
        s3.secret_access_key = Some(Secret::new("wrong-secret-0123456789"));
    });
    if let OfflineConfig::Rest {
        props,
        login_with_s3_keys,
        ..
    } = &mut config
    {
        *login_with_s3_keys = false;
        props.insert(
            "credential".to_owned(),
            format!("{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"),
        );
    }
    let e = rt.block_on(OfflineStore::open(&config)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.context_value("storage")
            .unwrap()
            .contains(&weed.s3_endpoint()),
        "{e}"
    );
    no_secret(&e);

    // A wrong secret for the catalog's login: refused by the catalog.
    let config = with_s3(weed.offline_config(), |s3| {
        s3.secret_access_key = Some(Secret::new("wrong-secret-0123456789"));
    });
    let e = rt.block_on(OfflineStore::open(&config)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert_eq!(
        e.context_value("catalog"),
        Some(weed.catalog_uri().as_str())
    );
    no_secret(&e);

    // Half a key pair.
    let config = with_s3(weed.offline_config(), |s3| s3.secret_access_key = None);
    let e = rt.block_on(OfflineStore::open(&config)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("secret_access_key"), "{e}");
}

fn batch(schema: &Arc<Schema>, rows: &[(i64, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
            Arc::new(
                TimestampMicrosecondArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())
                    .with_timezone("+00:00"),
            ),
        ],
    )
    .unwrap()
}

/// Expiring snapshots of appends deletes their manifest lists on S3 (what no retained
/// snapshot reads), keeps every data file (all still read), and the current snapshot reads
/// every row.
#[test]
fn expiring_snapshots_deletes_unreferenced_files_on_s3() {
    let Some(weed) = SeaweedFs::start_or_skip("offline_s3 expiry") else {
        return;
    };
    let table: TableName = "features.expiring".parse().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            false,
        ),
    ]));
    runtime().block_on(async {
        let store = OfflineStore::open(&weed.offline_config()).await.unwrap();
        store
            .create_table(&table, &schema, Some("ts"), HashMap::new())
            .await
            .unwrap();
        let mut all = Vec::new();
        let mut last_ms = 0;
        for step in 0..3i64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let rows: Vec<(i64, i64)> = (0..4)
                .map(|i| (step * 10 + i, step * 86_400_000_000 + i))
                .collect();
            let mut job = store.begin_append(&table).await.unwrap();
            job.write(batch(&schema, &rows)).await.unwrap();
            last_ms = job
                .commit(HashMap::from([("step".to_owned(), step.to_string())]))
                .await
                .unwrap()
                .timestamp_ms;
            all.extend(rows);
        }
        let lists = |objects: &[String]| {
            objects
                .iter()
                .filter(|o| o.contains("/metadata/snap-"))
                .count()
        };
        let before = weed.objects("features/expiring");
        assert_eq!(lists(&before), 3, "{before:?}");
        let data = |objects: &[String]| objects.iter().filter(|o| o.ends_with(".parquet")).count();
        assert_eq!(data(&before), 3, "{before:?}");

        let done = store.expire_snapshots(&table, last_ms, 1).await.unwrap();
        assert_eq!(done.snapshots.len(), 2, "{done:?}");
        assert_eq!(done.data_files, 0, "{done:?}");
        let after = weed.objects("features/expiring");
        assert_eq!(lists(&after), 1, "{after:?}");
        assert_eq!(data(&after), 3, "{after:?}");
        let read = store
            .scan_collect(&table, ScanOptions::default())
            .await
            .unwrap();
        assert_eq!(
            read.iter().map(RecordBatch::num_rows).sum::<usize>(),
            all.len()
        );
    });
}

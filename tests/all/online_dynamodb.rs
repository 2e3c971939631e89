//! What is particular to the DynamoDB online store (the conformance suite in `online.rs` runs
//! against it too, on `dynalite`): batches DynamoDB answers only in part, a missing table,
//! bad settings, and credentials that never show in errors.

use skewless_runtime::ErrorKind;
use skewless_runtime::online::{
    self, DynamoDbConfig, DynamoDbStore, EntityKey, FeatureValue, KeyValue, OnlineConfig,
    OnlineStore, Secret, StoredRow,
};
use skewless_tests::redis_server::free_port;

use crate::online::Dynamo;

fn big_row(i: i64) -> StoredRow {
    StoredRow {
        event_ts: i,
        created_ts: 0,
        digest: "sha256:big".into(),
        values: vec![FeatureValue::Binary(vec![i as u8; 100_000])],
    }
}

/// 150 rows of 100 KB in one read: more than one `BatchGetItem` (100 keys at most), and more
/// than one answer may carry (dynalite, like DynamoDB, answers about 1 MB and returns the rest
/// as unprocessed keys), so the store must ask again until every row is there.
#[test]
fn partly_answered_batches_are_asked_again_until_every_row_is_read() {
    let dynamo = Dynamo::new();
    let store = online::open(&OnlineConfig::DynamoDb(dynamo.config.clone())).unwrap();
    let keys: Vec<EntityKey> = (0..150i64).map(|i| EntityKey::new([i])).collect();
    let rows: Vec<_> = keys.iter().map(|k| (k.clone(), big_row(k_id(k)))).collect();
    assert_eq!(store.write("big", &rows).unwrap().written, 150);
    let read = store.read("big", &keys).unwrap();
    for ((_, expected), got) in rows.iter().zip(&read) {
        assert_eq!(got.as_ref(), Some(expected));
    }
    // Many views of one entity in one call, and a key asked twice.
    store
        .write("small", &[(keys[3].clone(), big_row(3))])
        .unwrap();
    let answers = store
        .read_many(&[
            ("big", &keys[..5]),
            ("small", &[keys[3].clone(), keys[3].clone()]),
        ])
        .unwrap();
    assert_eq!(answers[0].len(), 5);
    assert_eq!(answers[1], [Some(big_row(3)), Some(big_row(3))]);
    // Deleting a view takes more than one BatchWriteItem (25 at most).
    store.delete_view("big").unwrap();
    assert!(
        store
            .read("big", &keys)
            .unwrap()
            .iter()
            .all(Option::is_none)
    );
    assert_eq!(
        store.read("small", &keys[3..4]).unwrap(),
        [Some(big_row(3))]
    );
}

fn k_id(k: &EntityKey) -> i64 {
    match &k.values()[0] {
        KeyValue::Int64(i) => *i,
        other => panic!("{other}"),
    }
}

fn config(endpoint: String, table: &str) -> DynamoDbConfig {
    DynamoDbConfig {
        table: table.into(),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        access_key_id: Some("AKIDEXAMPLE".into()),
        secret_access_key: Some(Secret::new("hunter2-secret")),
        session_token: Some(Secret::new("hunter2-token")),
    }
}

#[test]
fn a_missing_table_is_not_found_by_name_and_a_dead_endpoint_is_unavailable() {
    let mut dynamo = Dynamo::new();
    let e = online::open(&OnlineConfig::DynamoDb(config(
        dynamo.server.endpoint(),
        "no-such-table",
    )))
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let message = e.to_string();
    assert!(message.contains("table no-such-table"), "{message}");
    assert!(message.contains(&dynamo.server.endpoint()), "{message}");
    assert!(message.contains("docs/online-stores.md"), "{message}");

    // The server dies: calls fail as Unavailable, naming where, never the secrets.
    let store = online::open(&OnlineConfig::DynamoDb(dynamo.config.clone())).unwrap();
    store.ping().unwrap();
    dynamo.server.kill();
    let e = store.read("v", &[EntityKey::new([1i64])]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains(&dynamo.server.endpoint()), "{e}");
    assert_eq!(store.ping().unwrap_err().kind(), ErrorKind::Unavailable);
}

#[test]
fn credentials_never_appear_in_errors_and_bad_settings_are_named() {
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let e = DynamoDbStore::connect(&config(endpoint.clone(), "t")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains(&endpoint), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    let store = DynamoDbStore::connect_lazily(&config(endpoint.clone(), "t")).unwrap();
    let e = store
        .write("v", &[(EntityKey::new([1i64]), big_row(1))])
        .unwrap_err();
    assert!(!format!("{e} {e:?} {store:?}").contains("hunter2"), "{e}");

    let half = DynamoDbConfig {
        secret_access_key: None,
        ..config(endpoint.clone(), "t")
    };
    let e = DynamoDbStore::connect_lazily(&half).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("go together"), "{e}");
    let e = DynamoDbStore::connect_lazily(&config(endpoint, "")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}

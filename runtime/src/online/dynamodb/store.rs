//! The DynamoDB online store, on the AWS SDK.
//!
//! **Table layout:** one table for every view; an item per (view, entity) with the partition
//! key `pk` (binary: `EntityKey::encode`, or `0xFF` then its SHA-256 when the encoding is
//! empty or longer than DynamoDB's 2048-byte limit: real encodings start with a tag byte 1 or 2,
//! so the two never meet), the sort key `sk` (the view's name), `ver` (the hex of the row's
//! 16-byte order-preserving version, so that string order is version order) and `row` (the
//! stored row bytes of `row.rs`, as in every backend). Partitioning by entity spreads the load
//! over the table's partitions and keeps one entity's views together.
//!
//! **Writes** keep the ordering rule with a conditional `PutItem` per row (`attribute_not_exists
//! (pk) OR ver < :ver OR (ver = :ver AND row < :row)`: the greater version wins, and on an
//! exact version tie the greater stored bytes, see `row.rs`), which DynamoDB evaluates
//! atomically with the write; a failed condition is a row not greater than the stored one
//! (`skipped_older`). `BatchWriteItem` cannot carry
//! conditions, so speed comes from concurrency instead: up to [`IN_FLIGHT`] puts at once over
//! the SDK's pooled HTTP connections.
//!
//! **Reads** are `BatchGetItem`s of at most [`BATCH_GET`] keys (DynamoDB's limit), strongly
//! consistent (a read never returns a row older than one already acknowledged), several at
//! once; keys DynamoDB leaves unprocessed (throttling, the 16 MB answer limit) are asked again,
//! with a backoff from 50 ms to 2 s while no key gets through; after [`UNPROCESSED_ATTEMPTS`]
//! rounds in a row without progress the call fails `Unavailable`. Throttling and transient errors of single calls are retried by the SDK
//! (standard mode, 4 attempts from a 100 ms backoff).
//!
//! **Deleting a view** scans the table for its items (a full scan: it is rare) and deletes
//! them with `BatchWriteItem`s of at most [`BATCH_WRITE`], retrying unprocessed items likewise.
//!
//! The SDK is async and [`OnlineStore`] is not: the store runs the SDK on a small runtime of
//! its own (two threads) and waits for each call's answer on a channel, so that it can be
//! called from any thread, inside another runtime or not.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    KeysAndAttributes, ScalarAttributeType, TableStatus, WriteRequest,
};
use futures::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};

use super::DynamoDbConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::online::row::{VERSION_LEN, decode_row, encode_row};
use crate::online::{EntityKey, OnlineStore, StoredRow, WriteStats, newest_per_key};

/// The most keys of one `BatchGetItem` (DynamoDB's limit).
pub(crate) const BATCH_GET: usize = 100;
/// The most requests of one `BatchWriteItem` (DynamoDB's limit).
pub(crate) const BATCH_WRITE: usize = 25;
/// Calls in flight at once for one store call.
pub(crate) const IN_FLIGHT: usize = 32;
/// How many times one batch is sent while DynamoDB leaves part of it unprocessed.
pub(crate) const UNPROCESSED_ATTEMPTS: u32 = 8;
/// DynamoDB's limit on a partition key's bytes.
const MAX_PARTITION_KEY: usize = 2048;

type Item = HashMap<String, AttributeValue>;

/// The ordering rule of `row.rs` as a condition: no stored item, or a smaller version (`ver`,
/// whose string order is version order), or the same version and smaller stored bytes (`row`:
/// DynamoDB compares binary values as unsigned bytes). Equal rows fail the condition.
const WRITE_CONDITION: &str =
    "attribute_not_exists(pk) OR #ver < :ver OR (#ver = :ver AND #row < :row)";

/// The online store in a DynamoDB table (see `docs/online-stores.md`): conditional puts that
/// never replace a newer row, strongly consistent batched reads, unprocessed keys retried.
pub struct DynamoDbStore {
    client: Client,
    table: String,
    /// Where the table is, without credentials, for messages.
    place: String,
    runtime: Background,
}

impl fmt::Debug for DynamoDbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbStore")
            .field("place", &self.place)
            .finish_non_exhaustive()
    }
}

/// The store's own runtime, shut down without blocking when the store is dropped (which may
/// happen inside another runtime, where a blocking shutdown would panic).
struct Background(Option<tokio::runtime::Runtime>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl DynamoDbStore {
    /// Opens the table `config` names and checks that it exists with the expected keys. Bad
    /// settings are `InvalidInput`; a table that does not exist is `NotFound`; an endpoint
    /// that does not answer, or refuses the credentials, is `Unavailable`.
    pub fn connect(config: &DynamoDbConfig) -> Result<Self> {
        let store = Self::connect_lazily(config)?;
        store.ping()?;
        Ok(store)
    }

    /// Like [`DynamoDbStore::connect`], but without calling DynamoDB: the first call does.
    /// Bad settings are still `InvalidInput`.
    pub fn connect_lazily(config: &DynamoDbConfig) -> Result<Self> {
        let place = config.describe();
        let invalid = |what: String| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("the DynamoDB online store ({place}): {what}"),
            )
            .with_context("online_store", &place)
        };
        if config.table.is_empty() {
            return Err(invalid(
                "`table` is empty; expected the table's name".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("skewless-dynamodb")
            .enable_all()
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot start the DynamoDB online store's threads: {e}"),
                )
                .with_source(e)
            })?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(100)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => {
                loader = loader.credentials_provider(Credentials::new(
                    id.clone(),
                    secret.expose().to_owned(),
                    config.session_token.as_ref().map(|t| t.expose().to_owned()),
                    None,
                    "skewless.toml",
                ));
            }
            (None, None) if config.session_token.is_none() => {}
            _ => {
                return Err(invalid(
                    "`access_key_id` and `secret_access_key` go together (with an optional \
                     `session_token`); give both, or neither for the standard AWS chain"
                        .into(),
                ));
            }
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(loader.load().await);
        });
        let sdk_config = rx.recv().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                format!(
                    "loading the AWS configuration of the DynamoDB online store ({place}) failed"
                ),
            )
        })?;
        if sdk_config.region().is_none() {
            return Err(invalid(
                "no AWS region; set `region` in [online] or AWS_REGION in the environment".into(),
            ));
        }
        Ok(DynamoDbStore {
            client: Client::new(&sdk_config),
            table: config.table.clone(),
            place,
            runtime: Background(Some(runtime)),
        })
    }

    /// Creates the table (partition key `pk` binary, sort key `sk` string, on-demand
    /// billing) unless it exists, and waits until it is active.
    pub fn create_table(&self) -> Result<()> {
        let (client, table, place) = (self.client.clone(), self.table.clone(), self.place.clone());
        self.run(async move {
            let attribute = |name: &str, kind| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(kind)
                    .build()
            };
            let key = |name: &str, kind| {
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
            };
            let created = client
                .create_table()
                .table_name(&table)
                .attribute_definitions(attribute("pk", ScalarAttributeType::B).map_err(internal)?)
                .attribute_definitions(attribute("sk", ScalarAttributeType::S).map_err(internal)?)
                .key_schema(key("pk", KeyType::Hash).map_err(internal)?)
                .key_schema(key("sk", KeyType::Range).map_err(internal)?)
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await;
            match created {
                Ok(_) => {}
                Err(e) if e.code() == Some("ResourceInUseException") => {}
                Err(e) => return Err(sdk_error(&place, "create the table of", e)),
            }
            for _ in 0..600 {
                let described = client
                    .describe_table()
                    .table_name(&table)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&place, "create the table of", e))?;
                if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("the DynamoDB online store's {place} did not become active within 60 s"),
            ))
        })
    }

    /// Runs `task` on the store's runtime and waits for its answer, from any thread.
    fn run<T: Send + 'static>(
        &self,
        task: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let runtime = self
            .runtime
            .0
            .as_ref()
            .expect("the runtime lives as long as the store");
        runtime.spawn(async move {
            let _ = tx.send(task.await);
        });
        rx.recv().map_err(|_| {
            Error::new(
                ErrorKind::Internal,
                format!(
                    "a call to the DynamoDB online store ({}) ended without an answer",
                    self.place
                ),
            )
        })?
    }
}

/// The partition key of an entity (see the module docs).
fn partition_key(encoded: &[u8]) -> Vec<u8> {
    if !encoded.is_empty() && encoded.len() <= MAX_PARTITION_KEY {
        return encoded.to_vec();
    }
    let mut out = Vec::with_capacity(33);
    out.push(0xFF);
    out.extend_from_slice(&Sha256::digest(encoded));
    out
}

fn key_item(pk: Vec<u8>, view: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::B(Blob::new(pk))),
        ("sk".to_owned(), AttributeValue::S(view.to_owned())),
    ])
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("building a DynamoDB request: {e}"),
    )
    .with_source(e)
}

/// An SDK error as the store's: it names the store and where it is, never the credentials.
fn sdk_error<E, R>(place: &str, doing: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&e).to_string();
    let (kind, message) = match e.code() {
        Some("ResourceNotFoundException") => (
            ErrorKind::NotFound,
            format!(
                "the DynamoDB online store's {place} does not exist ({detail}); create it with \
                 partition key `pk` (binary) and sort key `sk` (string), see \
                 docs/online-stores.md"
            ),
        ),
        Some(
            code @ ("UnrecognizedClientException"
            | "InvalidSignatureException"
            | "AccessDeniedException"
            | "MissingAuthenticationTokenException"
            | "ExpiredTokenException"),
        ) => (
            ErrorKind::Unavailable,
            format!(
                "the DynamoDB online store ({place}) refused the credentials to {doing} it \
                 ({code}); check access_key_id / secret_access_key in [online] or the AWS \
                 environment"
            ),
        ),
        _ => (
            ErrorKind::Unavailable,
            format!("cannot {doing} the DynamoDB online store ({place}): {detail}"),
        ),
    };
    Error::new(kind, message)
        .with_context("online_store", place)
        .with_source(e)
}

/// The pause before retry `attempt` (1-based) of a partly processed batch: 50 ms doubling up
/// to 2 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((25u64 << attempt.min(7)).min(2000))
}

/// Reads one batch of at most [`BATCH_GET`] keys, asking again for unprocessed keys: after
/// 50 ms when a round made progress, with a growing backoff after rounds that made none, up to
/// [`UNPROCESSED_ATTEMPTS`] of those in a row.
async fn get_batch(
    client: Client,
    table: String,
    place: String,
    keys: Vec<Item>,
) -> Result<Vec<Item>> {
    let mut items = Vec::with_capacity(keys.len());
    let mut pending = keys;
    let mut stalled = 0;
    while stalled < UNPROCESSED_ATTEMPTS {
        let asked = pending.len();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(pending))
            .consistent_read(true)
            .projection_expression("pk, sk, #row")
            .expression_attribute_names("#row", "row")
            .build()
            .map_err(internal)?;
        let answer = client
            .batch_get_item()
            .request_items(&table, request)
            .send()
            .await
            .map_err(|e| sdk_error(&place, "read from", e))?;
        if let Some(found) = answer.responses().and_then(|r| r.get(&table)) {
            items.extend(found.iter().cloned());
        }
        pending = answer
            .unprocessed_keys()
            .and_then(|u| u.get(&table))
            .map(|k| k.keys().to_vec())
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(items);
        }
        stalled = if pending.len() < asked {
            0
        } else {
            stalled + 1
        };
        tokio::time::sleep(backoff(stalled.max(1))).await;
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        format!(
            "the DynamoDB online store ({place}) left {} keys unprocessed after \
             {UNPROCESSED_ATTEMPTS} attempts (throttled?)",
            pending.len()
        ),
    )
    .with_context("online_store", &place))
}

/// Deletes one batch of at most [`BATCH_WRITE`] items, sending unprocessed ones again (as
/// [`get_batch`] does).
async fn delete_batch(client: Client, table: String, place: String, keys: Vec<Item>) -> Result<()> {
    let mut pending: Vec<WriteRequest> = keys
        .into_iter()
        .map(|key| {
            let delete = DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(internal)?;
            Ok(WriteRequest::builder().delete_request(delete).build())
        })
        .collect::<Result<_>>()?;
    let mut stalled = 0;
    while stalled < UNPROCESSED_ATTEMPTS {
        let asked = pending.len();
        let answer = client
            .batch_write_item()
            .request_items(&table, pending)
            .send()
            .await
            .map_err(|e| sdk_error(&place, "delete a view from", e))?;
        pending = answer
            .unprocessed_items()
            .and_then(|u| u.get(&table))
            .cloned()
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(());
        }
        stalled = if pending.len() < asked {
            0
        } else {
            stalled + 1
        };
        tokio::time::sleep(backoff(stalled.max(1))).await;
    }
    Err(Error::new(
        ErrorKind::Unavailable,
        format!(
            "the DynamoDB online store ({place}) left {} deletions unprocessed after \
             {UNPROCESSED_ATTEMPTS} attempts (throttled?)",
            pending.len()
        ),
    )
    .with_context("online_store", &place))
}

impl OnlineStore for DynamoDbStore {
    fn write(&self, view: &str, rows: &[(EntityKey, StoredRow)]) -> Result<WriteStats> {
        let (newest, skipped_older) = newest_per_key(rows)?;
        let items = newest
            .iter()
            .map(|(key, row)| {
                let bytes = encode_row(row)?;
                let version = hex::encode(&bytes[..VERSION_LEN]);
                Ok((partition_key(key), version, bytes))
            })
            .collect::<Result<Vec<_>>>()?;
        let (client, table, place, view_name) = (
            self.client.clone(),
            self.table.clone(),
            self.place.clone(),
            view.to_owned(),
        );
        let outcomes: Vec<bool> = self
            .run(async move {
                stream::iter(items)
                    .map(|(pk, version, bytes)| {
                        let mut item = key_item(pk, &view_name);
                        item.insert("ver".into(), AttributeValue::S(version.clone()));
                        item.insert("row".into(), AttributeValue::B(Blob::new(bytes.clone())));
                        let put = client
                            .put_item()
                            .table_name(&table)
                            .set_item(Some(item))
                            .condition_expression(WRITE_CONDITION)
                            .expression_attribute_names("#ver", "ver")
                            .expression_attribute_names("#row", "row")
                            .expression_attribute_values(":ver", AttributeValue::S(version))
                            .expression_attribute_values(
                                ":row",
                                AttributeValue::B(Blob::new(bytes)),
                            );
                        let place = &place;
                        async move {
                            match put.send().await {
                                Ok(_) => Ok(true),
                                Err(e)
                                    if e.as_service_error().is_some_and(|s| {
                                        s.is_conditional_check_failed_exception()
                                    }) =>
                                {
                                    Ok(false)
                                }
                                Err(e) => Err(sdk_error(place, "write to", e)),
                            }
                        }
                    })
                    .buffer_unordered(IN_FLIGHT)
                    .try_collect()
                    .await
            })
            .map_err(|e| e.with_context("view", view))?;
        let written = outcomes.iter().filter(|w| **w).count();
        Ok(WriteStats {
            written,
            skipped_older: skipped_older + outcomes.len() - written,
        })
    }

    fn read(&self, view: &str, keys: &[EntityKey]) -> Result<Vec<Option<StoredRow>>> {
        Ok(self.read_many(&[(view, keys)])?.pop().unwrap_or_default())
    }

    /// Every view's keys at once: `BatchGetItem`s of 100 distinct keys, several in flight.
    fn read_many(&self, requests: &[(&str, &[EntityKey])]) -> Result<Vec<Vec<Option<StoredRow>>>> {
        // DynamoDB refuses a batch naming a key twice: ask for each (pk, view) once.
        let asked: Vec<Vec<(Vec<u8>, &str)>> = requests
            .iter()
            .map(|(view, keys)| {
                keys.iter()
                    .map(|k| (partition_key(&k.encode()), *view))
                    .collect()
            })
            .collect();
        let mut distinct: Vec<Item> = Vec::new();
        let mut seen: std::collections::HashSet<(&[u8], &str)> = std::collections::HashSet::new();
        for (pk, view) in asked.iter().flatten() {
            if seen.insert((pk.as_slice(), view)) {
                distinct.push(key_item(pk.clone(), view));
            }
        }
        let views = || {
            requests
                .iter()
                .map(|(v, _)| *v)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (client, table, place) = (self.client.clone(), self.table.clone(), self.place.clone());
        let found: Vec<Vec<Item>> = self
            .run(async move {
                let batches: Vec<Vec<Item>> =
                    distinct.chunks(BATCH_GET).map(<[Item]>::to_vec).collect();
                stream::iter(batches)
                    .map(|batch| get_batch(client.clone(), table.clone(), place.clone(), batch))
                    .buffer_unordered(IN_FLIGHT)
                    .try_collect()
                    .await
            })
            .map_err(|e| e.with_context("view", views()))?;
        let mut rows: HashMap<(Vec<u8>, String), Vec<u8>> = HashMap::new();
        for item in found.into_iter().flatten() {
            if let (
                Some(AttributeValue::B(pk)),
                Some(AttributeValue::S(view)),
                Some(AttributeValue::B(row)),
            ) = (item.get("pk"), item.get("sk"), item.get("row"))
            {
                rows.insert((pk.as_ref().to_vec(), view.clone()), row.as_ref().to_vec());
            }
        }
        requests
            .iter()
            .zip(asked)
            .map(|((view, keys), asked)| {
                keys.iter()
                    .zip(asked)
                    .map(|(key, (pk, _))| {
                        rows.get(&(pk, (*view).to_owned()))
                            .map(|bytes| decode_row(bytes))
                            .transpose()
                            .map_err(|e| e.with_context("entity", key).with_context("view", *view))
                    })
                    .collect()
            })
            .collect()
    }

    /// Scans the table for the view's items and deletes them, 25 per call.
    fn delete_view(&self, view: &str) -> Result<()> {
        let (client, table, place, view_name) = (
            self.client.clone(),
            self.table.clone(),
            self.place.clone(),
            view.to_owned(),
        );
        self.run(async move {
            let mut start: Option<Item> = None;
            loop {
                let page = client
                    .scan()
                    .table_name(&table)
                    .filter_expression("sk = :view")
                    .expression_attribute_values(":view", AttributeValue::S(view_name.clone()))
                    .projection_expression("pk, sk")
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| sdk_error(&place, "delete a view from", e))?;
                let keys: Vec<Item> = page.items().to_vec();
                let batches: Vec<Vec<Item>> =
                    keys.chunks(BATCH_WRITE).map(<[Item]>::to_vec).collect();
                stream::iter(batches)
                    .map(|batch| delete_batch(client.clone(), table.clone(), place.clone(), batch))
                    .buffer_unordered(IN_FLIGHT)
                    .try_collect::<Vec<()>>()
                    .await?;
                match page.last_evaluated_key() {
                    Some(key) if !key.is_empty() => start = Some(key.clone()),
                    _ => return Ok(()),
                }
            }
        })
        .map_err(|e| e.with_context("view", view))
    }

    /// Checks that the table exists, is active, and has the store's keys.
    fn ping(&self) -> Result<()> {
        let (client, table, place) = (self.client.clone(), self.table.clone(), self.place.clone());
        self.run(async move {
            let described = client
                .describe_table()
                .table_name(&table)
                .send()
                .await
                .map_err(|e| sdk_error(&place, "reach", e))?;
            let Some(description) = described.table() else {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("DynamoDB described no table for the online store's {place}"),
                ));
            };
            let keys: Vec<(String, String)> = description
                .key_schema()
                .iter()
                .map(|k| {
                    (
                        k.attribute_name().to_owned(),
                        k.key_type().as_str().to_owned(),
                    )
                })
                .collect();
            let expected = [
                ("pk".to_owned(), "HASH".to_owned()),
                ("sk".to_owned(), "RANGE".to_owned()),
            ];
            if keys != expected {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "the DynamoDB online store's {place} has the keys {keys:?}; expected \
                         partition key `pk` (binary) and sort key `sk` (string)"
                    ),
                )
                .with_context("online_store", &place));
            }
            match description.table_status() {
                Some(TableStatus::Active | TableStatus::Updating) => Ok(()),
                status => Err(Error::new(
                    ErrorKind::Unavailable,
                    format!("the DynamoDB online store's {place} is not active ({status:?})"),
                )
                .with_context("online_store", &place)),
            }
        })
    }

    fn backend(&self) -> &'static str {
        "dynamodb"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_keys_are_the_encoding_or_a_marked_hash() {
        let short = EntityKey::new([7i64]).encode();
        assert_eq!(partition_key(&short), short);
        let long = EntityKey::new(["k".repeat(3000)]).encode();
        let hashed = partition_key(&long);
        assert_eq!(hashed.len(), 33);
        assert_eq!(hashed[0], 0xFF);
        assert_ne!(
            partition_key(&EntityKey::new(["k".repeat(3001)]).encode()),
            hashed
        );
        assert_eq!(partition_key(&[]).len(), 33);
        let at_limit = vec![2u8; MAX_PARTITION_KEY];
        assert_eq!(partition_key(&at_limit), at_limit);
    }

    #[test]
    fn backoff_grows_to_two_seconds() {
        let pauses: Vec<u128> = (1..=UNPROCESSED_ATTEMPTS)
            .map(|a| backoff(a).as_millis())
            .collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
    }
}

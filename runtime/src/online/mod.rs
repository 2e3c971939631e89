//! The online store: the latest feature values per (feature view, entity key).
//!
//! Materialization writes rows; the online server reads them, one round trip per request.
//! [`OnlineStore`] is the boundary; these backends sit behind it:
//!
//! - [`EmbeddedStore`]: a single [LMDB](http://www.lmdb.tech/doc/) file (e.g.
//!   `.skewless/online.lmdb`), no server to run, shared by a running server and any number of
//!   jobs on the same machine: readers never wait, writers from any process take turns.
//! - [`RedisStore`]: Redis, for production: several machines, or more data than one machine's
//!   disk.
//! - [`RedisClusterStore`]: a Redis Cluster, for more data or load than one Redis: keys
//!   hash-tagged by entity, one pipeline per master, failovers ridden out by bounded retries.
//! - `DynamoDbStore` (cargo feature `dynamodb`): a DynamoDB table, conditional puts and
//!   batched, strongly consistent reads.
//!
//! [`open`] chooses one from an [`OnlineConfig`] (`type = "embedded"`, `"redis"`,
//! `"redis-cluster"` or `"dynamodb"`); no other code names a concrete backend. A new backend is one more
//! file implementing [`OnlineStore`], one more [`OnlineConfig`] variant and one more arm in
//! [`open`]; the conformance suite (`tests/all/online.rs`) then runs against it unchanged.
//!
//! # Semantics
//!
//! A key design decision: **a write never replaces a newer row with an older one.** Every
//! backend applies the one order of rows per key, atomically with the write: the greater
//! `(event_ts, created_ts)` wins, and on an exact version tie the greater stored bytes (see
//! [`compare_rows`] and `row.rs`, which states the rule once; historical retrieval uses the
//! same order). So out-of-order, repeated or concurrent materializations cannot regress a
//! feature, the row kept does not depend on the order writes arrive in, and re-running a
//! window is a no-op. The embedded backend does it inside one write transaction, which LMDB
//! serializes across processes; the Redis backends in a Lua script, server-side (in a
//! cluster, on the key's own master); DynamoDB in a condition expression. All compare the
//! same stored encoding: its 16-byte order-preserving version prefix, and the whole value
//! only on a version tie.
//!
//! A read returns the stored row; [`status_at`] turns it into what the point-in-time join at
//! `T = now` says (present, null, not found, outside the TTL), so online and offline answers
//! agree by construction.
//!
//! ```no_run
//! # fn main() -> skewless_runtime::Result<()> {
//! use skewless_runtime::online::{self, EntityKey, FeatureValue, OnlineConfig, StoredRow};
//!
//! let store = online::open(&OnlineConfig::Embedded {
//!     path: ".skewless/online.lmdb".into(),
//!     map_size: None,
//! })?;
//! let key = EntityKey::new([42i64]);
//! let row = StoredRow {
//!     event_ts: 1_700_000_000_000_000,
//!     created_ts: 1_700_000_000_500_000,
//!     digest: "sha256:...".into(),
//!     values: vec![FeatureValue::Float64(12.5)],
//! };
//! store.write("user_spend", &[(key.clone(), row)])?;
//! let rows = store.read("user_spend", &[key])?;
//! assert!(rows[0].is_some());
//! # Ok(()) }
//! ```

mod dynamodb;
mod embedded;
mod key;
mod redis_async;
mod redis_cluster;
mod redis_store;
mod row;
mod status;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoDbStore;
pub use dynamodb::{DynamoDbConfig, Secret};
pub use embedded::{DEFAULT_MAP_SIZE, EmbeddedStore, EmbeddedStoreBuilder};
pub use key::{EntityKey, KeyValue};
pub use redis_cluster::RedisClusterStore;
pub use redis_store::RedisStore;
pub(crate) use redis_store::redact as redact_url;
pub(crate) use row::compare_values;
pub use row::{FeatureValue, StoredRow, compare_rows, replaces};
pub use status::{ReadStatus, status_at};

use crate::error::Result;

/// What a [`OnlineStore::write`] did. `written + skipped_older` is the number of rows given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct WriteStats {
    /// Rows that replaced the stored row (or were the first for their key).
    pub written: usize,
    /// Rows not written because a row at least as great ([`compare_rows`]) was stored, or was
    /// given in the same call for the same key.
    pub skipped_older: usize,
}

/// The latest feature values per (feature view, entity key). See the [module docs](self).
///
/// The API is synchronous: backends do blocking I/O (a file, a socket with timeouts). A backend
/// behind a network may also offer [`AsyncOnlineStore`] ([`OnlineStore::as_async`]), which
/// the async server awaits on its workers; it runs the other backends' reads off its workers,
/// except reads of a local store in small, quick requests ([`OnlineStore::is_local`]).
pub trait OnlineStore: Send + Sync + Debug {
    /// Writes `rows` of `view`, applying the order of rows ([`compare_rows`]: the version,
    /// then on an exact tie the stored bytes) per key atomically, also against concurrent
    /// writers. Among rows for the same key in one call, the greatest wins.
    fn write(&self, view: &str, rows: &[(EntityKey, StoredRow)]) -> Result<WriteStats>;

    /// The stored row of each key of `view`, in the order of `keys` (`None` if never written).
    fn read(&self, view: &str, keys: &[EntityKey]) -> Result<Vec<Option<StoredRow>>>;

    /// [`OnlineStore::read`] of several views at once, answers in the order of `requests`.
    /// A backend behind a network does it in one round trip.
    fn read_many(&self, requests: &[(&str, &[EntityKey])]) -> Result<Vec<Vec<Option<StoredRow>>>> {
        requests
            .iter()
            .map(|(view, keys)| self.read(view, keys))
            .collect()
    }

    /// Removes every row of `view`.
    fn delete_view(&self, view: &str) -> Result<()>;

    /// Succeeds if the store can serve reads now (readiness).
    fn ping(&self) -> Result<()>;

    /// The backend's name, as in [`OnlineConfig`]'s `type`: `"embedded"`, `"redis"`,
    /// `"redis-cluster"` or `"dynamodb"`.
    fn backend(&self) -> &'static str;

    /// Whether reads are served from this process's own memory and files, with no network
    /// round trip to wait for: a few microseconds for a handful of keys.
    fn is_local(&self) -> bool {
        false
    }

    /// The same store read and written without blocking a thread, if this backend offers it.
    fn as_async(&self) -> Option<&dyn AsyncOnlineStore> {
        None
    }
}

/// Reads of an online store that wait for the network without holding a thread: the same
/// rows, timeouts and errors as [`OnlineStore::read_many`], as a future polled on a tokio
/// runtime. For the online server, which would otherwise hand every read off its worker.
/// (Writes stay blocking: their callers, jobs and pushes, run components and sync logs off
/// the async workers anyway.)
pub trait AsyncOnlineStore: Send + Sync + Debug {
    /// [`OnlineStore::read_many`]: every view's keys in one round trip.
    fn read_many<'a>(
        &'a self,
        requests: &'a [(&'a str, &'a [EntityKey])],
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<StoredRow>>>>>;
}

/// Which online store to use: the `[online]` table of a project file, tagged by `type`.
///
/// ```toml
/// [online]
/// type = "embedded"
/// path = ".skewless/online.lmdb"
/// map_size = 68719476736  # optional, bytes: 64 GiB, the default
/// ```
///
/// ```toml
/// [online]
/// type = "redis"
/// url = "redis://127.0.0.1:6379"
/// ```
///
/// ```toml
/// [online]
/// type = "redis-cluster"
/// nodes = ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"]  # seeds: any one is enough
/// ```
///
/// ```toml
/// [online]
/// type = "dynamodb"
/// table = "skewless-online"
/// region = "eu-west-1"
/// ```
///
/// (see [`DynamoDbConfig`] for its other settings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum OnlineConfig {
    /// An LMDB file; a relative path is resolved by the caller (against the project directory).
    Embedded {
        /// The database file; parent directories are created, and the lock file is beside it
        /// (`<path>-lock`).
        path: PathBuf,
        /// The most bytes the store may hold, in bytes: address space reserved, not disk used;
        /// [`DEFAULT_MAP_SIZE`] when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        map_size: Option<u64>,
    },
    /// A Redis server.
    Redis {
        /// `redis://[user:password@]host:port[/db]`.
        url: String,
    },
    /// A Redis Cluster.
    #[serde(rename = "redis-cluster")]
    RedisCluster {
        /// Seed nodes, `redis://[user:password@]host:port` each: the store learns the others
        /// from the first that answers. Every node takes the first seed's user and password.
        nodes: Vec<String>,
    },
    /// A DynamoDB table (the store needs the `dynamodb` cargo feature; the configuration
    /// always parses).
    #[serde(rename = "dynamodb")]
    DynamoDb(DynamoDbConfig),
}

/// Opens the online store `config` describes. The one place that names concrete backends.
pub fn open(config: &OnlineConfig) -> Result<Arc<dyn OnlineStore>> {
    Ok(match config {
        OnlineConfig::Embedded { path, map_size } => Arc::new(open_embedded(path, *map_size)?),
        OnlineConfig::Redis { url } => Arc::new(RedisStore::connect(url)?),
        OnlineConfig::RedisCluster { nodes } => Arc::new(RedisClusterStore::connect(nodes)?),
        OnlineConfig::DynamoDb(config) => open_dynamodb(config, false)?,
    })
}

/// Opens the online store `config` describes without waiting for a server: a Redis store
/// connects on first use (a server that is down now can come up later), so a long-running
/// process can start and report itself not ready instead of failing. An invalid URL is still
/// an error at once.
pub fn open_lazily(config: &OnlineConfig) -> Result<Arc<dyn OnlineStore>> {
    Ok(match config {
        OnlineConfig::Embedded { path, map_size } => Arc::new(open_embedded(path, *map_size)?),
        OnlineConfig::Redis { url } => Arc::new(RedisStore::connect_lazily(url)?),
        OnlineConfig::RedisCluster { nodes } => Arc::new(RedisClusterStore::connect_lazily(nodes)?),
        OnlineConfig::DynamoDb(config) => open_dynamodb(config, true)?,
    })
}

#[cfg(feature = "dynamodb")]
fn open_dynamodb(config: &DynamoDbConfig, lazily: bool) -> Result<Arc<dyn OnlineStore>> {
    Ok(Arc::new(if lazily {
        DynamoDbStore::connect_lazily(config)?
    } else {
        DynamoDbStore::connect(config)?
    }))
}

#[cfg(not(feature = "dynamodb"))]
fn open_dynamodb(config: &DynamoDbConfig, _lazily: bool) -> Result<Arc<dyn OnlineStore>> {
    Err(crate::error::Error::new(
        crate::error::ErrorKind::Unsupported,
        format!(
            "the online store is DynamoDB ({}), but this skewless was built without it; \
             build it with the `dynamodb` feature: cargo install --path runtime --features \
             dynamodb",
            config.describe()
        ),
    ))
}

fn open_embedded(path: &std::path::Path, map_size: Option<u64>) -> Result<EmbeddedStore> {
    let builder = EmbeddedStore::builder(path);
    match map_size {
        Some(bytes) => builder.map_size(bytes),
        None => builder,
    }
    .open()
}

/// Rows each with its encoded entity key.
type KeyedRows<'r> = Vec<(Vec<u8>, &'r StoredRow)>;

/// The rows of one write call reduced to the greatest per key (by [`compare_rows`]), with
/// their encoded keys, in first-seen order; and how many were dropped.
fn newest_per_key(rows: &[(EntityKey, StoredRow)]) -> Result<(KeyedRows<'_>, usize)> {
    let mut out: KeyedRows<'_> = Vec::with_capacity(rows.len());
    let mut index: HashMap<Vec<u8>, usize> = HashMap::with_capacity(rows.len());
    let mut dropped = 0;
    for (key, row) in rows {
        match index.entry(key.encode()) {
            Entry::Occupied(slot) => {
                dropped += 1;
                let best = &mut out[*slot.get()].1;
                if compare_rows(row, best)? == std::cmp::Ordering::Greater {
                    *best = row;
                }
            }
            Entry::Vacant(slot) => {
                out.push((slot.key().clone(), row));
                slot.insert(out.len() - 1);
            }
        }
    }
    Ok((out, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(event_ts: i64, created_ts: i64, tag: &str) -> StoredRow {
        StoredRow {
            event_ts,
            created_ts,
            digest: tag.into(),
            values: vec![],
        }
    }

    #[test]
    fn newest_per_key_breaks_version_ties_by_the_stored_bytes() {
        let a = EntityKey::new([1i64]);
        let b = EntityKey::new(["b"]);
        let rows = vec![
            (a.clone(), row(1, 0, "a1")),
            (b.clone(), row(5, 0, "b1")),
            (a.clone(), row(3, 0, "a3")),
            (a.clone(), row(3, 0, "a3 again")),
            (a.clone(), row(3, 0, "a3")),
            (a.clone(), row(2, 9, "a2")),
            (b, row(5, 1, "b2")),
        ];
        let (newest, dropped) = newest_per_key(&rows).unwrap();
        assert_eq!(dropped, 5);
        let digests: Vec<&str> = newest.iter().map(|(_, r)| r.digest.as_str()).collect();
        // "a3 again" encodes greater than "a3" (its length byte first), in either order.
        assert_eq!(digests, ["a3 again", "b2"]);
        assert_eq!(newest[0].0, a.encode());
        let mut reversed = rows.clone();
        reversed.reverse();
        let (newest, _) = newest_per_key(&reversed).unwrap();
        let digests: Vec<&str> = newest.iter().map(|(_, r)| r.digest.as_str()).collect();
        assert_eq!(digests, ["b2", "a3 again"]);
    }

    #[test]
    fn config_is_tagged_by_type_and_lists_known_types() {
        let embedded: OnlineConfig =
            toml::from_str("type = \"embedded\"\npath = \"x/online.lmdb\"").unwrap();
        assert_eq!(
            embedded,
            OnlineConfig::Embedded {
                path: "x/online.lmdb".into(),
                map_size: None,
            }
        );
        let sized: OnlineConfig =
            toml::from_str("type = \"embedded\"\npath = \"x\"\nmap_size = 1073741824").unwrap();
        assert!(matches!(
            sized,
            OnlineConfig::Embedded {
                map_size: Some(1_073_741_824),
                ..
            }
        ));
        let redis: OnlineConfig =
            toml::from_str("type = \"redis\"\nurl = \"redis://127.0.0.1:6379\"").unwrap();
        assert!(matches!(redis, OnlineConfig::Redis { .. }));
        let cluster: OnlineConfig =
            toml::from_str("type = \"redis-cluster\"\nnodes = [\"redis://a:1\", \"redis://b:2\"]")
                .unwrap();
        assert_eq!(
            cluster,
            OnlineConfig::RedisCluster {
                nodes: vec!["redis://a:1".into(), "redis://b:2".into()]
            }
        );
        let dynamodb: OnlineConfig =
            toml::from_str("type = \"dynamodb\"\ntable = \"t\"\nendpoint = \"http://x:1\"")
                .unwrap();
        let OnlineConfig::DynamoDb(config) = dynamodb else {
            panic!("{dynamodb:?}")
        };
        assert_eq!(config.describe(), "table t (endpoint http://x:1)");
        let e = toml::from_str::<OnlineConfig>("type = \"dynamodb\"\ntable = \"t\"\nurl = \"u\"")
            .unwrap_err();
        assert!(e.to_string().contains("url"), "{e}");
        let e = toml::from_str::<OnlineConfig>("type = \"dynamo\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected one of `embedded`, `redis`, `redis-cluster`, `dynamodb`"),
            "{e}"
        );
        let e = toml::from_str::<OnlineConfig>("type = \"redis\"\nurl = \"x\"\nhost = \"y\"")
            .unwrap_err();
        assert!(e.to_string().contains("host"), "{e}");
    }
}

//! The Redis online store, for production and for several writer processes.
//!
//! **Key layout:** `skewless:<view>:<hex of EntityKey::encode>`, one Redis string per
//! (view, entity), holding the stored row bytes of `row.rs` (a 16-byte order-preserving
//! version, then the row). Hex keeps keys printable (`redis-cli --scan --pattern
//! 'skewless:user_spend:*'`) and contains no `:`, so the view is everything between the first
//! and the last `:` whatever it contains.
//!
//! **Writes** are one pipeline per batch: `SCRIPT LOAD` (so the script is always cached, even
//! right after a Redis restart or `SCRIPT FLUSH`), then one `EVALSHA` of [`WRITE_MANY_SCRIPT`]
//! per [`SCRIPT_KEYS`] keys, which reads the stored rows with one `MGET`, compares each with
//! its new row and writes the winners with one `MSET`. The comparison is the order of rows of
//! `row.rs` on the stored bytes (the 16-byte version prefix first, the rest only on an exact
//! version tie), and a row is written only if strictly greater: the ordering rule runs
//! server-side, atomically, so two writers (threads, processes, machines) can never regress a
//! value, and the row kept does not depend on the order they write in. Byte comparison rather
//! than Lua numbers, because Lua numbers are doubles and lose microsecond `i64` timestamps.
//! **Reads** are one pipeline of `GET`s per batch (not `MGET`, so that a future cluster client
//! can route each key to its slot). Both send at most [`CHUNK`] keys per round trip, bounding
//! the memory of one request.
//!
//! **Connections** come from a small pool of blocking connections: a call takes one (or opens
//! one), uses it, and puts it back if it is healthy. Connect, read and write time out after
//! [`TIMEOUT`], so a dead or stuck Redis gives an `Unavailable` error naming the URL (without
//! its password) instead of hanging a request. A connection that fails is dropped; when a
//! pooled connection turns out to be broken (Redis restarted), the pool is emptied and the call
//! is retried once on a fresh connection, so a restart needs no restart of skewless. Retrying a
//! write is safe: re-applying a row is a no-op under the ordering rule (it may then count as
//! `skipped_older` instead of `written`).
//!
//! **The async reads** ([`AsyncOnlineStore`], for the online server) send the very same
//! `GET` pipelines over one shared multiplexed connection (`redis_async.rs`) with the same timeouts
//! and the same one retry on a broken connection, so a request waits for Redis without
//! holding a thread.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use redis::{Connection, ConnectionLike, RedisError, RedisResult, Script};

use super::redis_async::AsyncConnection;
use super::row::{decode_row, encode_row};
use super::{AsyncOnlineStore, EntityKey, OnlineStore, StoredRow, WriteStats, newest_per_key};
use crate::error::{Error, ErrorKind, Result};

/// Connect, read and write timeout of every Redis call.
pub(super) const TIMEOUT: Duration = Duration::from_secs(2);
/// The most keys sent in one pipeline (one round trip).
pub(super) const CHUNK: usize = 10_000;
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

/// The ordering rule of `row::replaces_encoded` in Lua, a function `wins(new, old)` shared by
/// [`WRITE_SCRIPT`] and [`WRITE_MANY_SCRIPT`] (a macro, so that `concat!` can join it): true
/// when `new` is strictly greater than the stored `old` as unsigned bytes, or `old` is
/// missing (`false`, Redis's nil) or too short to hold a version. The 16-byte version
/// prefixes decide first; only on an exact version tie are the rest of the bytes compared
/// (64 at a time while equal). Every comparison is of `string.byte` values or exact string
/// equality: Lua's `<` on strings goes through `strcoll`, which depends on the locale and, in
/// some versions, stops at a NUL byte.
macro_rules! ordering_rule {
    () => {
        r"
local function wins(new, old)
  if not old or #old < 16 then return true end
  for i = 1, 16 do
    local a, b = string.byte(new, i), string.byte(old, i)
    if a ~= b then return a > b end
  end
  if old == new then return false end
  local n = math.min(#new, #old)
  local i = 17
  while i + 63 <= n and string.sub(new, i, i + 63) == string.sub(old, i, i + 63) do
    i = i + 64
  end
  while i <= n and string.byte(new, i) == string.byte(old, i) do
    i = i + 1
  end
  if i <= n then return string.byte(new, i) > string.byte(old, i) end
  return #new > #old
end
"
    };
}

/// The compare-and-set of one row: `KEYS[1]` the Redis key, `ARGV[1]` the encoded row; 1 if
/// written, 0 if the stored row is at least as great. For Redis Cluster, where the keys of
/// one script call must share a slot.
pub(super) const WRITE_SCRIPT: &str = concat!(
    ordering_rule!(),
    "if wins(ARGV[1], redis.call('GET', KEYS[1])) then\n",
    "  redis.call('SET', KEYS[1], ARGV[1])\n",
    "  return 1\n",
    "end\n",
    "return 0\n"
);

/// The compare-and-set of several rows in one call: `KEYS[i]` and `ARGV[i]` as in
/// [`WRITE_SCRIPT`]; returns how many were written. One `MGET` reads every stored row and one
/// `MSET` writes the winners: Redis spends about a microsecond on each command a script
/// issues, more than the comparison itself, so two commands per call instead of two per row
/// (and one call per [`SCRIPT_KEYS`] rows instead of one per row). The script runs atomically,
/// so this is the per-key rule applied to each row in turn. A key repeated in one call (the
/// store sends each key once, but the script does not rely on it) is compared with the row
/// written before it in the same call.
pub(super) const WRITE_MANY_SCRIPT: &str = concat!(
    ordering_rule!(),
    "local stored = redis.call('MGET', unpack(KEYS))\n",
    "local latest, sets, written = {}, {}, 0\n",
    "for k = 1, #KEYS do\n",
    "  local key, new = KEYS[k], ARGV[k]\n",
    "  local old = latest[key]\n",
    "  if old == nil then old = stored[k] end\n",
    "  if wins(new, old) then\n",
    "    latest[key] = new\n",
    "    sets[#sets + 1] = key\n",
    "    sets[#sets + 1] = new\n",
    "    written = written + 1\n",
    "  end\n",
    "end\n",
    "if #sets > 0 then redis.call('MSET', unpack(sets)) end\n",
    "return written\n"
);

/// The most rows of one [`WRITE_MANY_SCRIPT`] call: a call blocks Redis while it runs (about
/// a microsecond per row), so a large write is cut into calls that let other clients in.
const SCRIPT_KEYS: usize = 128;

/// The online store in Redis: one string per (view, entity) under
/// `skewless:<view>:<hex of the encoded key>`, written by a server-side compare-and-set script,
/// one pipelined round trip per batch (of up to 10,000 keys). Calls time out after 2 s with an
/// `Unavailable` error; connections are pooled and re-established after a Redis restart.
pub struct RedisStore {
    client: redis::Client,
    /// The URL without its password, for messages.
    url: String,
    script: Script,
    idle: Mutex<Vec<Connection>>,
    /// The async path's shared connection (`redis_async.rs`).
    asynchronous: AsyncConnection,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host:port[/db]`) and checks that it
    /// answers. A malformed URL is `InvalidInput`; a server that does not answer within 2 s
    /// is `Unavailable`.
    pub fn connect(url: &str) -> Result<Self> {
        let store = Self::connect_lazily(url)?;
        store.ping()?;
        Ok(store)
    }

    /// Like [`RedisStore::connect`], but without checking that the server answers: the first
    /// call connects. A malformed URL is still `InvalidInput`.
    pub fn connect_lazily(url: &str) -> Result<Self> {
        let redacted = redact(url);
        let client = redis::Client::open(url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "invalid Redis URL {redacted}: {e}; expected \
                     redis://[user:password@]host:port[/db]"
                ),
            )
            .with_source(e)
        })?;
        let store = RedisStore {
            asynchronous: AsyncConnection::new(client.clone()),
            client,
            url: redacted,
            script: Script::new(WRITE_MANY_SCRIPT),
            idle: Mutex::new(Vec::new()),
        };
        Ok(store)
    }

    /// The URL, without its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The Redis key of an entity: `prefix` (`skewless:<view>:`) then the hex of its encoding.
    fn redis_key(prefix: &str, encoded: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(prefix.len() + 2 * encoded.len());
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(hex::encode(encoded).as_bytes());
        out
    }

    fn new_connection(&self) -> Result<Connection> {
        let connect = || -> RedisResult<Connection> {
            let conn = self.client.get_connection_with_timeout(TIMEOUT)?;
            conn.set_read_timeout(Some(TIMEOUT))?;
            conn.set_write_timeout(Some(TIMEOUT))?;
            Ok(conn)
        };
        connect().map_err(|e| self.error("connect to", &e).with_source(e))
    }

    /// Runs `f` on a pooled connection; see the module docs for the retry.
    fn with_connection<T>(
        &self,
        doing: &str,
        mut f: impl FnMut(&mut Connection) -> RedisResult<T>,
    ) -> Result<T> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let reused = pooled.is_some();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => self.new_connection()?,
        };
        let result = match f(&mut conn) {
            Err(e) if reused && is_broken(&e) => {
                // Likely every pooled connection predates a Redis restart: drop them all.
                self.idle
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                conn = self.new_connection()?;
                f(&mut conn)
            }
            result => result,
        };
        match result {
            Ok(value) => {
                self.release(conn);
                Ok(value)
            }
            Err(e) => {
                // A server error leaves the connection in step; anything else may not.
                if matches!(e.kind(), redis::ErrorKind::Server(_)) && conn.is_open() {
                    self.release(conn);
                }
                Err(self.error(doing, &e).with_source(e))
            }
        }
    }

    fn release(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE && conn.is_open() {
            idle.push(conn);
        }
    }

    fn error(&self, doing: &str, e: &RedisError) -> Error {
        let url = &self.url;
        let (kind, message) = match e.kind() {
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => (
                ErrorKind::Internal,
                format!("unexpected answer from the Redis online store at {url} ({doing}): {e}"),
            ),
            redis::ErrorKind::Server(_) => (
                ErrorKind::Unavailable,
                format!("the Redis online store at {url} refused to {doing} it: {e}"),
            ),
            redis::ErrorKind::AuthenticationFailed => (
                ErrorKind::Unavailable,
                format!(
                    "cannot {doing} the Redis online store at {url}: {e}; check the user and \
                     password in the URL"
                ),
            ),
            _ if e.is_timeout() => (
                ErrorKind::Unavailable,
                format!(
                    "the Redis online store at {url} did not answer within {}s ({doing}): {e}; \
                     is redis-server running and reachable?",
                    TIMEOUT.as_secs()
                ),
            ),
            _ => (
                ErrorKind::Unavailable,
                format!(
                    "cannot {doing} the Redis online store at {url}: {e}; is redis-server \
                     running?"
                ),
            ),
        };
        Error::new(kind, message).with_context("online_store", url)
    }
}

/// Whether `e` says the connection itself is unusable (rather than the request refused).
pub(super) fn is_broken(e: &RedisError) -> bool {
    e.is_connection_dropped() || (e.is_io_error() && !e.is_timeout())
}

/// `url` with the password (everything after the user name in the userinfo) replaced by
/// `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let user = match authority[..at].split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{}{user}{}", &url[..scheme_end], &rest[at..])
}

/// `view` as a literal in a Redis glob pattern.
pub(super) fn glob_escape(view: &str) -> String {
    let mut out = String::with_capacity(view.len());
    for c in view.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The pipelines of one write call: the newest row per key, [`CHUNK`] per pipeline, each
/// opening with `SCRIPT LOAD`; and how many rows were dropped as older than another of the
/// same call.
struct WritePipelines {
    pipes: Vec<(usize, redis::Pipeline)>,
    skipped_older: usize,
}

impl WritePipelines {
    fn new(script: &Script, view: &str, rows: &[(EntityKey, StoredRow)]) -> Result<Self> {
        let (newest, skipped_older) = newest_per_key(rows)?;
        let prefix = format!("skewless:{view}:");
        let mut pipes = Vec::with_capacity(newest.len().div_ceil(CHUNK));
        for chunk in newest.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            pipe.load_script(script).ignore();
            for rows in chunk.chunks(SCRIPT_KEYS) {
                let mut call = script.prepare_invoke();
                for (key, row) in rows {
                    call.key(RedisStore::redis_key(&prefix, key));
                    call.arg(encode_row(row)?);
                }
                pipe.invoke_script(&call);
            }
            pipes.push((chunk.len(), pipe));
        }
        Ok(WritePipelines {
            pipes,
            skipped_older,
        })
    }

    /// Counts the answers of one pipeline (of `rows` rows; a count written per script call)
    /// into `stats`.
    fn count(stats: &mut WriteStats, rows: usize, results: &[i64]) {
        let written = results.iter().map(|r| *r as usize).sum::<usize>();
        stats.written += written;
        stats.skipped_older += rows - written;
    }
}

/// The `GET` pipelines of one read call: every view's keys in request order, [`CHUNK`] per
/// pipeline; and how to turn their answers back into rows per view.
struct ReadPipelines<'r> {
    requests: &'r [(&'r str, &'r [EntityKey])],
    /// Every key with the index of its request, in order.
    flat: Vec<(usize, &'r EntityKey)>,
    pipes: Vec<redis::Pipeline>,
}

impl<'r> ReadPipelines<'r> {
    fn new(requests: &'r [(&'r str, &'r [EntityKey])]) -> Self {
        let prefixes: Vec<String> = requests
            .iter()
            .map(|(view, _)| format!("skewless:{view}:"))
            .collect();
        let flat: Vec<(usize, &EntityKey)> = requests
            .iter()
            .enumerate()
            .flat_map(|(i, (_, keys))| keys.iter().map(move |k| (i, k)))
            .collect();
        let pipes = flat
            .chunks(CHUNK)
            .map(|chunk| {
                let mut pipe = redis::pipe();
                for (i, key) in chunk {
                    pipe.cmd("GET")
                        .arg(RedisStore::redis_key(&prefixes[*i], &key.encode()));
                }
                pipe
            })
            .collect();
        ReadPipelines {
            requests,
            flat,
            pipes,
        }
    }

    /// The views read, for messages.
    fn views(&self) -> String {
        (self.requests.iter())
            .map(|(view, _)| *view)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The rows of each request from the answers of every pipeline, in order.
    fn decode(self, values: Vec<Option<Vec<u8>>>) -> Result<Vec<Vec<Option<StoredRow>>>> {
        let mut out: Vec<Vec<Option<StoredRow>>> = (self.requests.iter())
            .map(|(_, keys)| Vec::with_capacity(keys.len()))
            .collect();
        if values.len() != self.flat.len() {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "the Redis online store answered {} reads for {} keys",
                    values.len(),
                    self.flat.len()
                ),
            ));
        }
        for ((i, key), value) in self.flat.iter().zip(values) {
            let view = self.requests[*i].0;
            out[*i].push(
                value
                    .map(|bytes| decode_row(&bytes))
                    .transpose()
                    .map_err(|e| e.with_context("entity", key).with_context("view", view))?,
            );
        }
        Ok(out)
    }
}

impl AsyncOnlineStore for RedisStore {
    fn read_many<'a>(
        &'a self,
        requests: &'a [(&'a str, &'a [EntityKey])],
    ) -> BoxFuture<'a, Result<Vec<Vec<Option<StoredRow>>>>> {
        Box::pin(async move {
            let reads = ReadPipelines::new(requests);
            let mut values = Vec::with_capacity(reads.flat.len());
            for pipe in &reads.pipes {
                let answers: Vec<Option<Vec<u8>>> =
                    self.asynchronous.query(pipe).await.map_err(|e| {
                        self.error("read from", &e)
                            .with_source(e)
                            .with_context("view", reads.views())
                    })?;
                values.extend(answers);
            }
            reads.decode(values)
        })
    }
}

impl OnlineStore for RedisStore {
    fn write(&self, view: &str, rows: &[(EntityKey, StoredRow)]) -> Result<WriteStats> {
        let writes = WritePipelines::new(&self.script, view, rows)?;
        let mut stats = WriteStats {
            written: 0,
            skipped_older: writes.skipped_older,
        };
        for (rows, pipe) in &writes.pipes {
            let results: Vec<i64> = self
                .with_connection("write to", |conn| pipe.query(conn))
                .map_err(|e| e.with_context("view", view))?;
            WritePipelines::count(&mut stats, *rows, &results);
        }
        Ok(stats)
    }

    fn read(&self, view: &str, keys: &[EntityKey]) -> Result<Vec<Option<StoredRow>>> {
        Ok(OnlineStore::read_many(self, &[(view, keys)])?
            .pop()
            .unwrap_or_default())
    }

    /// Every view's keys in one pipeline (one round trip per 10,000 keys in all).
    fn read_many(&self, requests: &[(&str, &[EntityKey])]) -> Result<Vec<Vec<Option<StoredRow>>>> {
        let reads = ReadPipelines::new(requests);
        let mut values = Vec::with_capacity(reads.flat.len());
        for pipe in &reads.pipes {
            let answers: Vec<Option<Vec<u8>>> = self
                .with_connection("read from", |conn| pipe.query(conn))
                .map_err(|e| e.with_context("view", reads.views()))?;
            values.extend(answers);
        }
        reads.decode(values)
    }

    fn delete_view(&self, view: &str) -> Result<()> {
        let prefix = format!("skewless:{view}:");
        let pattern = format!("skewless:{}:*", glob_escape(view));
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = self
                .with_connection("delete a view from", |conn| {
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(conn)
                })
                .map_err(|e| e.with_context("view", view))?;
            // The glob also matches views that extend this one past a `:` (`v:w` for `v`);
            // this view's keys have only hex after the prefix.
            let keys: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| {
                    k.strip_prefix(prefix.as_bytes())
                        .is_some_and(|rest| rest.iter().all(u8::is_ascii_hexdigit))
                })
                .collect();
            if !keys.is_empty() {
                self.with_connection("delete a view from", |conn| {
                    redis::cmd("UNLINK").arg(&keys).query::<()>(conn)
                })
                .map_err(|e| e.with_context("view", view))?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    fn ping(&self) -> Result<()> {
        self.with_connection("ping", |conn| redis::cmd("PING").query::<()>(conn))
    }

    fn backend(&self) -> &'static str {
        "redis"
    }

    fn as_async(&self) -> Option<&dyn AsyncOnlineStore> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redact("redis://user:s3cr@t@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact("redis://:pw@host"), "redis://:***@host");
        assert_eq!(redact("rediss://token@host/1"), "rediss://***@host/1");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn keys_are_prefixed_hex_and_globs_are_escaped() {
        let key = RedisStore::redis_key("skewless:v:", &EntityKey::new(["a"]).encode());
        assert_eq!(key, b"skewless:v:020161");
        assert_eq!(glob_escape(r"a*b?[c]\"), r"a\*b\?\[c\]\\");
    }

    #[test]
    fn a_malformed_url_is_invalid_input() {
        let e = RedisStore::connect("http://x:y:z").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("invalid Redis URL"), "{e}");
    }
}

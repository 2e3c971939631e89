//! The Redis Cluster online store: the Redis store's rows and rule, spread over the masters of
//! a cluster.
//!
//! **Key layout:** `skewless:{<hex of EntityKey::encode>}:<view>`. The braces are a hash tag:
//! the slot (and so the node) of a key depends on the entity alone, so one entity's rows of
//! every view live on one node and a request for one entity's features touches one node.
//! The hex contains no brace and the prefix none, so the tag is always the entity whatever the
//! view's name. The value is the stored row bytes of `row.rs`, as in the single-node store.
//!
//! **Routing** is ours, on single-node connections of the `redis` crate: the store keeps the
//! cluster's slot map (`CLUSTER SLOTS`, see `topology.rs`), groups a call's commands by the
//! master of their slot, sends one pipeline to every master involved, then reads the answers:
//! one round trip per node, the nodes answering in parallel. (The crate's own cluster client
//! cannot put `SCRIPT LOAD` and `WAIT` in a per-node pipeline, and gives up a whole pipeline
//! when one node's connection fails.)
//!
//! **Writes** keep the single-node store's guarantee with the same compare-and-set script
//! ([`WRITE_SCRIPT`]): each `EVALSHA` names one key, so it runs on the key's own master,
//! atomically there. Every write pipeline starts with `SCRIPT LOAD` (a promoted replica has
//! no script cache) and, on a master with a live replica, ends with `WAIT 1 1000`: a write is
//! acknowledged only once a replica holds it, so the failover of a master cannot lose an
//! acknowledged write, and a value read later never goes back. If no replica confirms within
//! a second the write is retried (a no-op on the master) once the map is refreshed; a master
//! whose replicas all failed is written without waiting.
//!
//! **Redirections and failures:** a `MOVED` answer refreshes the slot map and resends the
//! command to the new owner at once; `ASK` sends it once to the importing node, after
//! `ASKING`; `TRYAGAIN`, `CLUSTERDOWN`, `MASTERDOWN`, `LOADING`, `READONLY`, a connection
//! refused or dropped, or a timeout refresh the map (from any node that answers: the known
//! masters, then the seeds) and retry the commands not yet answered, with a backoff from
//! 100 ms to 1 s, up to [`ATTEMPTS`] times (about 5 s): enough for a replica's promotion
//! after a cluster-node-timeout of a second or two. Past that the call fails `Unavailable`
//! naming the node and the cause, and the next call starts again: no restart of skewless is
//! needed once the cluster is healthy. Retrying a write is safe: re-applying a row is a no-op
//! under the ordering rule (it may then count as `skipped_older` instead of `written`).
//!
//! **Readiness** ([`OnlineStore::ping`]) asks for a fresh slot map and checks that every slot
//! has a master and that every master answers and reports `cluster_state:ok`.

mod topology;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use redis::{
    Connection, ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo, RedisError,
    Value,
};

use self::topology::{NodeAddr, SLOTS, Topology, slot};
use super::redis_store::{CHUNK, TIMEOUT, WRITE_SCRIPT, glob_escape, redact};
use super::row::{decode_row, encode_row};
use super::{EntityKey, OnlineStore, StoredRow, WriteStats, newest_per_key};
use crate::error::{Error, ErrorKind, Result};

/// How many times one call sends a command that failed for a reason a retry can cure.
pub(super) const ATTEMPTS: u32 = 8;
/// How long a write waits for a replica to acknowledge it (`WAIT 1 <ms>`); below [`TIMEOUT`],
/// so the connection's read does not time out first.
const REPLICA_WAIT_MS: u64 = 1000;
/// Idle connections kept per node.
const MAX_IDLE: usize = 8;

/// The online store in a Redis Cluster: one string per (view, entity) under
/// `skewless:{<hex of the encoded key>}:<view>`, one pipeline per master involved in a call,
/// written by the compare-and-set script and confirmed by a replica; redirections and
/// failovers retried for about 5 s. See `docs/online-stores.md`.
pub struct RedisClusterStore {
    /// The seed nodes' connection settings, and their addresses.
    seeds: Vec<(NodeAddr, ConnectionInfo)>,
    /// The seed URLs without passwords, for messages.
    nodes: String,
    topology: RwLock<Option<Arc<Topology>>>,
    idle: Mutex<HashMap<NodeAddr, Vec<Connection>>>,
    /// `SCRIPT LOAD <script>`, `WAIT 1 <ms>` and `ASKING`, encoded once.
    load_script: Vec<u8>,
    wait: Vec<u8>,
    asking: Vec<u8>,
    script_sha: String,
}

impl fmt::Debug for RedisClusterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterStore")
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

/// One command of a call and the slot that routes it.
struct Op {
    slot: u16,
    packed: Vec<u8>,
}

impl Op {
    fn new(key: &[u8], cmd: &redis::Cmd) -> Op {
        Op {
            slot: slot(key),
            packed: cmd.get_packed_command(),
        }
    }
}

/// One node's pipeline of a round, sent and not yet answered: the commands (indices into the
/// call's, each with whether it follows `ASKING`) and whether a `WAIT` ends it.
struct Sent {
    addr: NodeAddr,
    conn: Connection,
    group: Vec<(usize, bool)>,
    wait: bool,
}

/// Why a round of a call left commands unanswered.
#[derive(Default)]
struct Round {
    retry: Vec<usize>,
    /// The last cause, for the message if the retries run out.
    cause: Option<String>,
    refresh: bool,
    /// Whether to wait before the next round (not after a mere redirection).
    back_off: bool,
    /// A refusal no retry can cure.
    fatal: Option<(NodeAddr, redis::ServerError)>,
    /// Commands to send next round to the node an `ASK` named.
    asks: Vec<(usize, NodeAddr)>,
}

impl Round {
    fn retry_later(&mut self, ops: impl IntoIterator<Item = usize>, cause: String) {
        self.retry.extend(ops);
        self.cause = Some(cause);
        self.refresh = true;
        self.back_off = true;
    }
}

impl RedisClusterStore {
    /// Connects to the cluster through `nodes` (seed URLs, `redis://[user:password@]host:port`;
    /// any one that answers is enough), reads its slot map and checks that it serves every
    /// slot. A malformed URL or an empty list is `InvalidInput`; a cluster that does not
    /// answer or is not healthy is `Unavailable`.
    pub fn connect(nodes: &[String]) -> Result<Self> {
        let store = Self::connect_lazily(nodes)?;
        store.ping()?;
        Ok(store)
    }

    /// Like [`RedisClusterStore::connect`], but without contacting the cluster: the first call
    /// does. Malformed URLs are still `InvalidInput`.
    pub fn connect_lazily(nodes: &[String]) -> Result<Self> {
        if nodes.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the Redis Cluster online store has no seed nodes; expected `nodes = \
                 [\"redis://host:port\", ...]` in [online]",
            ));
        }
        let mut seeds = Vec::with_capacity(nodes.len());
        for url in nodes {
            let invalid = |detail: String| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "invalid Redis Cluster node URL {}: {detail}; expected \
                         redis://[user:password@]host:port",
                        redact(url)
                    ),
                )
            };
            let info = url
                .as_str()
                .into_connection_info()
                .map_err(|e| invalid(e.to_string()).with_source(e))?;
            let addr = match info.addr() {
                ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                    NodeAddr {
                        host: host.clone(),
                        port: *port,
                    }
                }
                _ => return Err(invalid("a cluster node is reached over TCP".into())),
            };
            seeds.push((addr, info));
        }
        let script = redis::Script::new(WRITE_SCRIPT);
        Ok(RedisClusterStore {
            nodes: nodes
                .iter()
                .map(|u| redact(u))
                .collect::<Vec<_>>()
                .join(", "),
            seeds,
            topology: RwLock::new(None),
            idle: Mutex::new(HashMap::new()),
            load_script: redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(WRITE_SCRIPT)
                .get_packed_command(),
            wait: redis::cmd("WAIT")
                .arg(1)
                .arg(REPLICA_WAIT_MS)
                .get_packed_command(),
            asking: redis::cmd("ASKING").get_packed_command(),
            script_sha: script.get_hash().to_owned(),
        })
    }

    /// The seed URLs, without passwords.
    pub fn nodes(&self) -> &str {
        &self.nodes
    }

    /// The Redis key of an entity of `view`: see the module docs.
    fn redis_key(view: &str, encoded: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(13 + 2 * encoded.len() + view.len());
        out.extend_from_slice(b"skewless:{");
        out.extend_from_slice(hex::encode(encoded).as_bytes());
        out.extend_from_slice(b"}:");
        out.extend_from_slice(view.as_bytes());
        out
    }

    /// Whether `key` is a key of `view` (and not of a view whose name extends it).
    fn is_key_of(key: &[u8], view: &str) -> bool {
        let Some(rest) = key.strip_prefix(b"skewless:{".as_slice()) else {
            return false;
        };
        let Some(close) = rest.iter().position(|&b| b == b'}') else {
            return false;
        };
        rest[..close].iter().all(u8::is_ascii_hexdigit)
            && rest[close + 1..].strip_prefix(b":".as_slice()) == Some(view.as_bytes())
    }

    /// How to reach `addr`: a seed's own settings, or the first seed's (user, password, TLS)
    /// with this address.
    fn connection_info(&self, addr: &NodeAddr) -> ConnectionInfo {
        if let Some((_, info)) = self.seeds.iter().find(|(a, _)| a == addr) {
            return info.clone();
        }
        let template = self.seeds[0].1.clone();
        let new_addr = match template.addr() {
            ConnectionAddr::TcpTls {
                insecure,
                tls_params,
                ..
            } => ConnectionAddr::TcpTls {
                host: addr.host.clone(),
                port: addr.port,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(addr.host.clone(), addr.port),
        };
        template.set_addr(new_addr)
    }

    /// A pooled connection to `addr`, or a new one.
    fn connection(&self, addr: &NodeAddr) -> std::result::Result<Connection, RedisError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(addr)
            .and_then(Vec::pop);
        if let Some(conn) = pooled {
            return Ok(conn);
        }
        let conn = redis::Client::open(self.connection_info(addr))?
            .get_connection_with_timeout(TIMEOUT)?;
        conn.set_read_timeout(Some(TIMEOUT))?;
        conn.set_write_timeout(Some(TIMEOUT))?;
        Ok(conn)
    }

    fn release(&self, addr: NodeAddr, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let pool = idle.entry(addr).or_default();
        if pool.len() < MAX_IDLE && conn.is_open() {
            pool.push(conn);
        }
    }

    /// Drops the idle connections to `addr`: after one failed, the others likely predate the
    /// same restart.
    fn forget(&self, addr: &NodeAddr) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(addr);
    }

    /// The slot map, read from the cluster if none is known yet.
    fn topology(&self, doing: &str) -> Result<Arc<Topology>> {
        let known = self
            .topology
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match known {
            Some(topology) => Ok(topology),
            None => self
                .refresh()
                .map_err(|cause| self.unavailable(doing, &cause)),
        }
    }

    /// Reads the slot map afresh from the first node that answers (the known masters, then
    /// the seeds), preferring one that covers every slot; `Err` says why none did.
    fn refresh(&self) -> std::result::Result<Arc<Topology>, String> {
        let known = self
            .topology
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut candidates: Vec<NodeAddr> = known
            .iter()
            .flat_map(|t| t.masters().iter().map(|m| m.addr.clone()))
            .collect();
        for (addr, _) in &self.seeds {
            if !candidates.contains(addr) {
                candidates.push(addr.clone());
            }
        }
        let mut best: Option<Topology> = None;
        let mut failures = Vec::new();
        for addr in candidates {
            let answer = self.connection(&addr).and_then(|mut conn| {
                let answer = redis::cmd("CLUSTER").arg("SLOTS").query::<Value>(&mut conn);
                if answer.is_ok() {
                    self.release(addr.clone(), conn);
                }
                answer
            });
            match answer {
                Ok(answer) => match Topology::parse(&answer, &addr.host) {
                    Some(topology) if topology.uncovered() == 0 => {
                        best = Some(topology);
                        break;
                    }
                    Some(topology) => {
                        failures.push(format!(
                            "{addr}: {} of {SLOTS} slots have no master",
                            topology.uncovered()
                        ));
                        if best
                            .as_ref()
                            .is_none_or(|b| b.uncovered() > topology.uncovered())
                        {
                            best = Some(topology);
                        }
                    }
                    None => failures.push(format!("{addr}: not a slot map: {answer:?}")),
                },
                Err(e) => {
                    self.forget(&addr);
                    failures.push(format!("{addr}: {e}"));
                }
            }
        }
        let Some(best) = best else {
            return Err(format!("no node answered ({})", failures.join("; ")));
        };
        let best = Arc::new(best);
        *self
            .topology
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(best.clone());
        Ok(best)
    }

    /// Runs `ops` (one key each), each on its slot's master, one pipeline per master, retrying
    /// what a retry can cure (see the module docs). Answers in the order of `ops`. A write
    /// (`EVALSHA` of the script) gets the script loaded first and a replica's confirmation.
    fn execute(&self, doing: &str, ops: &[Op], write: bool) -> Result<Vec<Value>> {
        let mut answers: Vec<Option<Value>> = vec![None; ops.len()];
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        let mut ask: HashMap<usize, NodeAddr> = HashMap::new();
        let mut attempt = 0;
        while !pending.is_empty() {
            let topology = self.topology(doing)?;
            let round = self.round(&topology, ops, &pending, &mut ask, &mut answers, write);
            if let Some((addr, e)) = round.fatal {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "the Redis Cluster online store (node {addr}; seeds {}) refused to \
                         {doing} it: {e}",
                        self.nodes
                    ),
                )
                .with_context("online_store", &self.nodes));
            }
            pending = round.retry;
            ask.extend(round.asks);
            if pending.is_empty() {
                break;
            }
            attempt += 1;
            let cause = round.cause.unwrap_or_default();
            if attempt >= ATTEMPTS {
                return Err(self.unavailable(
                    doing,
                    &format!("still failing after {ATTEMPTS} attempts: {cause}"),
                ));
            }
            if round.back_off {
                tracing::warn!(
                    store = "redis-cluster",
                    attempt,
                    %cause,
                    "online store call failed for now; retrying"
                );
                std::thread::sleep(backoff(attempt));
            }
            if round.refresh {
                // A failed refresh keeps the old map; the next round says what fails.
                let _ = self.refresh();
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or(Value::Nil))
            .collect())
    }

    /// One round of [`Self::execute`]: send the pending commands, one pipeline per node, then
    /// read every answer.
    fn round(
        &self,
        topology: &Topology,
        ops: &[Op],
        pending: &[usize],
        ask: &mut HashMap<usize, NodeAddr>,
        answers: &mut [Option<Value>],
        write: bool,
    ) -> Round {
        let mut round = Round::default();
        // Node -> (live replicas, commands, which of them go after ASKING).
        let mut groups: BTreeMap<NodeAddr, (usize, Vec<(usize, bool)>)> = BTreeMap::new();
        for &i in pending {
            let (addr, asking) = match ask.remove(&i) {
                Some(addr) => (addr, true),
                None => match topology.master_of(ops[i].slot) {
                    Some(master) => (master.addr.clone(), false),
                    None => {
                        round.retry_later([i], format!("slot {} has no master", ops[i].slot));
                        continue;
                    }
                },
            };
            let replicas = topology
                .masters()
                .iter()
                .find(|m| m.addr == addr)
                .map_or(0, |m| m.replicas);
            groups
                .entry(addr)
                .or_insert_with(|| (replicas, Vec::new()))
                .1
                .push((i, asking));
        }

        // Send every node its pipeline before reading any answer: the nodes work in parallel.
        let mut sent = Vec::with_capacity(groups.len());
        for (addr, (replicas, group)) in groups {
            let wait = write && replicas > 0;
            let mut bytes = Vec::new();
            if write {
                bytes.extend_from_slice(&self.load_script);
            }
            for &(i, asking) in &group {
                if asking {
                    bytes.extend_from_slice(&self.asking);
                }
                bytes.extend_from_slice(&ops[i].packed);
            }
            if wait {
                bytes.extend_from_slice(&self.wait);
            }
            let connected = self.connection(&addr).and_then(|mut conn| {
                conn.send_packed_command(&bytes)?;
                Ok(conn)
            });
            match connected {
                Ok(conn) => sent.push(Sent {
                    addr,
                    conn,
                    group,
                    wait,
                }),
                Err(e) => {
                    self.forget(&addr);
                    round.retry_later(group.iter().map(|(i, _)| *i), format!("{addr}: {e}"));
                }
            }
        }

        for mut sent in sent {
            let addr = sent.addr.clone();
            match Self::read_answers(&mut sent, write, answers, &mut round) {
                Ok(()) => self.release(addr, sent.conn),
                Err((unanswered, e)) => {
                    // The connection is out of step or dead; what it did not answer is retried.
                    self.forget(&addr);
                    round.retry_later(unanswered, format!("{addr}: {e}"));
                }
            }
        }
        round
    }

    /// Reads one node's answers to its pipeline into `answers` and `round`. `Err` if the
    /// connection failed: the commands still unanswered, and why.
    fn read_answers(
        sent: &mut Sent,
        write: bool,
        answers: &mut [Option<Value>],
        round: &mut Round,
    ) -> std::result::Result<(), (Vec<usize>, RedisError)> {
        let Sent {
            addr,
            conn,
            group,
            wait,
        } = sent;
        let (addr, group, wait) = (&*addr, &*group, *wait);
        let all = || group.iter().map(|(i, _)| *i).collect::<Vec<_>>();
        if write && let Value::ServerError(e) = conn.recv_response().map_err(|e| (all(), e))? {
            round.fatal.get_or_insert((addr.clone(), e));
        }
        let mut done = Vec::with_capacity(group.len());
        for (n, &(i, asking)) in group.iter().enumerate() {
            let unanswered = || group[n..].iter().map(|(i, _)| *i).collect::<Vec<_>>();
            if asking {
                conn.recv_response().map_err(|e| (unanswered(), e))?;
            }
            match conn.recv_response().map_err(|e| (unanswered(), e))? {
                Value::ServerError(e) => Self::redirect_or_fail(addr, i, e, round),
                value => {
                    // A write that already reported `written` in an earlier round stays so.
                    if !(write && answers[i] == Some(Value::Int(1))) {
                        answers[i] = Some(value);
                    }
                    done.push(i);
                }
            }
        }
        if wait {
            match conn.recv_response().map_err(|e| (done.clone(), e))? {
                Value::Int(n) if n >= 1 => {}
                other => round.retry_later(
                    done,
                    format!(
                        "{addr} wrote but no replica confirmed within {REPLICA_WAIT_MS} ms \
                         ({other:?})"
                    ),
                ),
            }
        }
        Ok(())
    }

    /// What to do about an error answer to command `i` from `addr`.
    fn redirect_or_fail(addr: &NodeAddr, i: usize, e: redis::ServerError, round: &mut Round) {
        let target = || {
            let (_, node) = e.details()?.split_once(' ')?;
            let (host, port) = node.rsplit_once(':')?;
            Some(NodeAddr {
                host: host.trim_matches(['[', ']']).to_owned(),
                port: port.parse().ok()?,
            })
        };
        match e.code() {
            "MOVED" => {
                round.retry.push(i);
                round.refresh = true;
                round.cause = Some(format!("{addr}: {e}"));
            }
            "ASK" => match target() {
                Some(node) => {
                    round.retry.push(i);
                    round.cause = Some(format!("{addr}: {e}"));
                    // For the next round only: ASK is a one-off redirection.
                    round.asks.push((i, node));
                }
                None => {
                    round.fatal.get_or_insert((addr.clone(), e));
                }
            },
            "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "LOADING" | "READONLY" | "NOSCRIPT" => {
                round.retry_later([i], format!("{addr}: {e}"));
            }
            _ => {
                round.fatal.get_or_insert((addr.clone(), e));
            }
        }
    }

    fn unavailable(&self, doing: &str, cause: &str) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "cannot {doing} the Redis Cluster online store (seed nodes {}): {cause}; are \
                 the nodes running and the cluster healthy (redis-cli --cluster check)?",
                self.nodes
            ),
        )
        .with_context("online_store", &self.nodes)
    }
}

/// The pause before retry `attempt` (1-based): 100 ms doubling up to 1 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((50u64 << attempt.min(5)).min(1000))
}

impl OnlineStore for RedisClusterStore {
    fn write(&self, view: &str, rows: &[(EntityKey, StoredRow)]) -> Result<WriteStats> {
        let (newest, mut skipped_older) = newest_per_key(rows)?;
        let mut written = 0;
        for chunk in newest.chunks(CHUNK) {
            let ops = chunk
                .iter()
                .map(|(key, row)| {
                    let key = Self::redis_key(view, key);
                    let cmd = redis::cmd("EVALSHA")
                        .arg(&self.script_sha)
                        .arg(1)
                        .arg(&key)
                        .arg(encode_row(row)?)
                        .to_owned();
                    Ok(Op::new(&key, &cmd))
                })
                .collect::<Result<Vec<_>>>()?;
            let answers = self
                .execute("write to", &ops, true)
                .map_err(|e| e.with_context("view", view))?;
            let chunk_written = answers.iter().filter(|a| **a == Value::Int(1)).count();
            written += chunk_written;
            skipped_older += chunk.len() - chunk_written;
        }
        Ok(WriteStats {
            written,
            skipped_older,
        })
    }

    fn read(&self, view: &str, keys: &[EntityKey]) -> Result<Vec<Option<StoredRow>>> {
        Ok(self.read_many(&[(view, keys)])?.pop().unwrap_or_default())
    }

    /// Every view's keys at once: one pipeline per master involved (per 10,000 keys in all).
    fn read_many(&self, requests: &[(&str, &[EntityKey])]) -> Result<Vec<Vec<Option<StoredRow>>>> {
        let flat: Vec<(usize, &EntityKey)> = requests
            .iter()
            .enumerate()
            .flat_map(|(i, (_, keys))| keys.iter().map(move |k| (i, k)))
            .collect();
        let mut out: Vec<Vec<Option<StoredRow>>> = requests
            .iter()
            .map(|(_, keys)| Vec::with_capacity(keys.len()))
            .collect();
        let views = || {
            requests
                .iter()
                .map(|(view, _)| *view)
                .collect::<Vec<_>>()
                .join(", ")
        };
        for chunk in flat.chunks(CHUNK) {
            let ops: Vec<Op> = chunk
                .iter()
                .map(|(i, key)| {
                    let key = Self::redis_key(requests[*i].0, &key.encode());
                    Op::new(&key, redis::cmd("GET").arg(&key))
                })
                .collect();
            let answers = self
                .execute("read from", &ops, false)
                .map_err(|e| e.with_context("view", views()))?;
            for ((i, key), answer) in chunk.iter().zip(answers) {
                let view = requests[*i].0;
                let row =
                    match answer {
                        Value::Nil => None,
                        Value::BulkString(bytes) => Some(decode_row(&bytes).map_err(|e| {
                            e.with_context("entity", key).with_context("view", view)
                        })?),
                        other => {
                            return Err(Error::new(
                                ErrorKind::Internal,
                                format!(
                                    "unexpected answer to GET from the Redis Cluster online store \
                                 (seeds {}): {other:?}",
                                    self.nodes
                                ),
                            )
                            .with_context("view", view));
                        }
                    };
                out[*i].push(row);
            }
        }
        Ok(out)
    }

    /// Scans every master for the view's keys, then unlinks them (each routed by its slot).
    fn delete_view(&self, view: &str) -> Result<()> {
        let doing = "delete a view from";
        let topology = self
            .refresh()
            .map_err(|cause| self.unavailable(doing, &cause).with_context("view", view))?;
        let pattern = format!("skewless:{{*}}:{}", glob_escape(view));
        for master in topology.masters() {
            let addr = &master.addr;
            let mut cursor: u64 = 0;
            loop {
                let scanned = self.connection(addr).and_then(|mut conn| {
                    let page: (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query(&mut conn)?;
                    self.release(addr.clone(), conn);
                    Ok(page)
                });
                let (next, keys) = scanned.map_err(|e| {
                    self.forget(addr);
                    self.unavailable(doing, &format!("{addr}: {e}"))
                        .with_context("view", view)
                })?;
                let ops: Vec<Op> = keys
                    .iter()
                    .filter(|k| Self::is_key_of(k, view))
                    .map(|k| Op::new(k, redis::cmd("UNLINK").arg(k)))
                    .collect();
                self.execute(doing, &ops, false)
                    .map_err(|e| e.with_context("view", view))?;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    fn ping(&self) -> Result<()> {
        let doing = "ping";
        let topology = self
            .refresh()
            .map_err(|cause| self.unavailable(doing, &cause))?;
        if topology.uncovered() > 0 {
            return Err(self.unavailable(
                doing,
                &format!("{} of {SLOTS} slots have no master", topology.uncovered()),
            ));
        }
        for master in topology.masters() {
            let addr = &master.addr;
            let info = self.connection(addr).and_then(|mut conn| {
                let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn)?;
                self.release(addr.clone(), conn);
                Ok(info)
            });
            let info = info.map_err(|e| {
                self.forget(addr);
                self.unavailable(doing, &format!("{addr}: {e}"))
            })?;
            if !info.lines().any(|l| l.trim() == "cluster_state:ok") {
                let state = info
                    .lines()
                    .find(|l| l.starts_with("cluster_state:"))
                    .unwrap_or("no cluster_state")
                    .trim();
                return Err(self.unavailable(doing, &format!("{addr} reports {state}")));
            }
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "redis-cluster"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tag_the_entity_and_belong_to_one_view() {
        let encoded = EntityKey::new(["a"]).encode();
        let key = RedisClusterStore::redis_key("v:w", &encoded);
        assert_eq!(key, b"skewless:{020161}:v:w");
        assert_eq!(
            slot(&key),
            slot(&RedisClusterStore::redis_key("other", &encoded))
        );
        assert!(RedisClusterStore::is_key_of(&key, "v:w"));
        assert!(!RedisClusterStore::is_key_of(&key, "v"));
        assert!(!RedisClusterStore::is_key_of(b"skewless:{0x}:v:w", "v:w"));
        assert!(!RedisClusterStore::is_key_of(b"skewless:{01}:x}:v", "v"));
        // A view name with braces does not move the tag.
        let braces = RedisClusterStore::redis_key("{x}", &encoded);
        assert_eq!(slot(&braces), slot(&key));
    }

    #[test]
    fn seeds_are_checked_and_passwords_redacted() {
        let e = RedisClusterStore::connect_lazily(&[]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = RedisClusterStore::connect_lazily(&["http://u:secret@x:y:z".into()]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(!e.to_string().contains("secret"), "{e}");
        let store = RedisClusterStore::connect_lazily(&[
            "redis://me:secret@127.0.0.1:7000".into(),
            "redis://127.0.0.1:7001".into(),
        ])
        .unwrap();
        assert_eq!(
            store.nodes(),
            "redis://me:***@127.0.0.1:7000, redis://127.0.0.1:7001"
        );
        assert!(!format!("{store:?}").contains("secret"));
    }

    #[test]
    fn backoff_grows_to_a_second() {
        let pauses: Vec<u128> = (1..ATTEMPTS).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000, 1000]);
    }
}

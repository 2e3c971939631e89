//! [`RedisStreams`]: a Redis stream read through a consumer group.
//!
//! `XREADGROUP GROUP <group> <consumer> COUNT <n> BLOCK <ms> STREAMS <key> <id>`: with id `0`
//! first, which re-delivers this consumer's pending messages (read before a crash, never
//! acknowledged), then `>` for new ones. The group is created at the stream's start
//! (`XGROUP CREATE ... 0 MKSTREAM`) if it does not exist. A dead letter is `XADD
//! <key>:dead-letter * id <id> error <message> <the message's fields...>`.
//!
//! Dead consumers: `XINFO CONSUMERS` names the consumers with pending messages and their
//! idle time; one idle for the claim time is claimed with `SET <key>:claim:<group>/<consumer>
//! <claimer> NX PX 60000` (renewed at each read, released when done) and its pending
//! messages read with `XREADGROUP GROUP <group> <dead consumer> ... STREAMS <key> <id>`, never
//! `>`. A consumer that connects while it is claimed waits for the claim to go.
//!
//! Reads go over a connection of their own (`wire.rs`), whose replies are taken from the
//! socket's bytes straight into messages (`resp.rs`): the Redis client's value tree cost
//! most of the reader thread's time. Everything else (the group, claims, acknowledgements,
//! dead letters) uses the Redis client.

use std::time::Duration;

use redis::{Connection, Value};

use super::resp::ReplyError;
use super::wire::{Wire, WireError};
use super::{Message, MessageId, StreamSource};
use crate::error::{Error, ErrorKind, Result};

/// Connect, read and write timeout, beyond the blocking read's own wait.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis stream read through a consumer group: its pending messages first, then new
/// ones; dead letters go to `<key>:dead-letter`.
pub struct RedisStreams {
    /// The server's URL with its password hidden, for messages.
    url: String,
    client: redis::Client,
    connection: Option<Connection>,
    /// The connection reads are made on, opened at the first read.
    wire: Option<Wire>,
    key: String,
    group: String,
    consumer: String,
    /// Whether this consumer's pending messages were all re-read.
    pending_done: bool,
    /// The id after which the next pending message is read.
    pending_after: String,
    /// The last message id returned by a read.
    delivered: Option<MessageId>,
    /// Set when this reads another consumer's pending messages, taken over: the key of the
    /// claim held on it (deleted when this is dropped); such a source never reads new
    /// messages.
    claim: Option<String>,
    /// The name of the consumer that took this one over (the value of the claim).
    claimer: String,
}

/// How long a claim on a dead consumer is held without a read renewing it.
const CLAIM_TTL: Duration = Duration::from_secs(60);

impl std::fmt::Debug for RedisStreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreams")
            .field("key", &self.key)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

impl RedisStreams {
    /// The stream `key` of the Redis server at `url`, read as `consumer` of `group` (created
    /// if missing).
    pub fn connect(url: &str, key: &str, group: &str, consumer: &str) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("invalid Redis URL: {e}; expected redis://host:port[/db]"),
            )
        })?;
        let mut streams = RedisStreams {
            url: crate::online::redact_url(url),
            client,
            connection: None,
            wire: None,
            key: key.to_owned(),
            group: group.to_owned(),
            consumer: consumer.to_owned(),
            pending_done: false,
            pending_after: "0".to_owned(),
            delivered: None,
            claim: None,
            claimer: String::new(),
        };
        let created: redis::RedisResult<Value> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query(streams.connection()?);
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(streams.failed("create the consumer group on", e)),
        }
        // Another consumer may be taking this one over (it looked dead): wait until it is
        // done, so that the two do not apply the same pending messages.
        let claim = streams.claim_key(consumer);
        let started = std::time::Instant::now();
        loop {
            let claimer: redis::RedisResult<Option<String>> =
                redis::cmd("GET").arg(&claim).query(streams.connection()?);
            match claimer {
                Ok(None) => break,
                Ok(Some(claimer)) if started.elapsed() > CLAIM_TTL => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "consumer `{consumer}` of `{key}` is being taken over by consumer \
                             `{claimer}` (its pending messages looked abandoned); try again \
                             once that is done"
                        ),
                    ));
                }
                Ok(Some(_)) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(streams.failed("check the claims on", e)),
            }
        }
        Ok(streams)
    }

    /// A new handle, with its own connection, on this stream and group as `consumer`,
    /// starting at that consumer's unacknowledged messages; `claim`: the claim this consumer
    /// holds on `consumer`, a dead one it takes over.
    fn handle(&self, consumer: String, claim: Option<String>) -> RedisStreams {
        RedisStreams {
            url: self.url.clone(),
            client: self.client.clone(),
            connection: None,
            wire: None,
            key: self.key.clone(),
            group: self.group.clone(),
            pending_done: false,
            pending_after: "0".to_owned(),
            delivered: None,
            claimer: match claim {
                Some(_) => self.consumer.clone(),
                None => String::new(),
            },
            claim,
            consumer,
        }
    }

    /// The key of the claim on `consumer` held while another consumer takes it over.
    fn claim_key(&self, consumer: &str) -> String {
        format!("{}:claim:{}/{}", self.key, self.group, consumer)
    }

    fn connection(&mut self) -> Result<&mut Connection> {
        if self.connection.is_none() {
            let connection = self
                .client
                .get_connection_with_timeout(TIMEOUT)
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Unavailable,
                        format!("could not connect to Redis: {e}"),
                    )
                })?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("just set"))
    }

    fn failed(&mut self, what: &str, e: redis::RedisError) -> Error {
        // A broken connection is opened again on the next call.
        self.connection = None;
        let url = &self.url;
        Error::new(
            ErrorKind::Unavailable,
            format!(
                "could not {what} the Redis stream `{}` ({url}): {e}",
                self.key
            ),
        )
        .with_source(e)
    }
}

impl StreamSource for RedisStreams {
    fn position_key(&self) -> String {
        format!("redis:{}/{}/{}", self.key, self.group, self.consumer)
    }

    fn reader(&self) -> Result<Box<dyn StreamSource>> {
        Ok(Box::new(self.handle(self.consumer.clone(), None)))
    }

    fn next_batch(&mut self, max: usize, wait: Duration) -> Result<Vec<Message>> {
        if let Some(claim) = self.claim.clone() {
            if self.pending_done {
                return Ok(Vec::new());
            }
            let renewed: redis::RedisResult<Value> = redis::cmd("PEXPIRE")
                .arg(&claim)
                .arg(CLAIM_TTL.as_millis() as u64)
                .query(self.connection()?);
            renewed.map_err(|e| self.failed("renew a claim on", e))?;
        }
        let from = match self.pending_done {
            true => ">".to_owned(),
            false => self.pending_after.clone(),
        };
        let count = max.to_string();
        let block = (wait.as_millis() as u64).to_string();
        let mut args: Vec<&[u8]> = vec![
            b"XREADGROUP",
            b"GROUP",
            self.group.as_bytes(),
            self.consumer.as_bytes(),
            b"COUNT",
            count.as_bytes(),
        ];
        if self.pending_done {
            args.extend([b"BLOCK".as_slice(), block.as_bytes()]);
        }
        args.extend([b"STREAMS".as_slice(), self.key.as_bytes(), from.as_bytes()]);
        if self.wire.is_none() {
            let info = self.client.get_connection_info();
            let wire = Wire::connect(info, TIMEOUT).map_err(|e| {
                Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "could not connect to Redis at {} to read the stream `{}`: {e}",
                        self.url, self.key
                    ),
                )
            })?;
            self.wire = Some(wire);
        }
        let wire = self.wire.as_mut().expect("just set");
        let messages = match wire.read_group(&args, TIMEOUT + wait) {
            Ok(messages) => messages,
            Err(e) => {
                // The connection is opened again at the next read: after an error it may be
                // in the middle of a reply.
                self.wire = None;
                // The server may have delivered messages in the reply that was lost: they
                // are this consumer's pending ones now, so the next read starts again with
                // the pending messages after the last one returned.
                self.pending_done = false;
                self.pending_after = self
                    .delivered
                    .map_or_else(|| "0".to_owned(), |id| id.to_string());
                let kind = match &e {
                    WireError::Reply(ReplyError::Protocol(_) | ReplyError::Shape(_)) => {
                        ErrorKind::Internal
                    }
                    WireError::Io(_) | WireError::Reply(ReplyError::Server(_)) => {
                        ErrorKind::Unavailable
                    }
                };
                return Err(Error::new(
                    kind,
                    format!(
                        "could not read the Redis stream `{}` ({}): {e}",
                        self.key, self.url
                    ),
                ));
            }
        };
        if !self.pending_done {
            match messages.last() {
                Some(last) => self.pending_after = last.id.to_string(),
                None => {
                    // Nothing (more) pending: new messages, in the same call.
                    self.pending_done = true;
                    if self.claim.is_some() {
                        return Ok(messages);
                    }
                    return self.next_batch(max, wait);
                }
            }
        }
        if let Some(last) = messages.last() {
            self.delivered = Some(last.id);
        }
        Ok(messages)
    }

    fn claim_dead(&mut self, idle: Duration) -> Result<Vec<Box<dyn StreamSource>>> {
        let reply: redis::RedisResult<Value> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&self.key)
            .arg(&self.group)
            .query(self.connection()?);
        let reply = reply.map_err(|e| self.failed("list the consumers of", e))?;
        let mut claimed: Vec<Box<dyn StreamSource>> = Vec::new();
        for (name, pending, idle_ms) in parse_consumers(reply) {
            if name == self.consumer || pending == 0 || idle_ms < idle.as_millis() as i64 {
                continue;
            }
            let claim = self.claim_key(&name);
            let taken: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(&claim)
                .arg(&self.consumer)
                .arg("NX")
                .arg("PX")
                .arg(CLAIM_TTL.as_millis() as u64)
                .query(self.connection()?);
            if taken
                .map_err(|e| self.failed("claim a consumer of", e))?
                .is_none()
            {
                // Another consumer took it over first.
                continue;
            }
            claimed.push(Box::new(self.handle(name, Some(claim))));
        }
        Ok(claimed)
    }

    fn ack(&mut self, ids: &[MessageId]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut command = redis::cmd("XACK");
        command.arg(&self.key).arg(&self.group);
        for id in ids {
            command.arg(id.to_string());
        }
        let connection = self.connection()?;
        let acked: redis::RedisResult<Value> = command.query(connection);
        acked
            .map(|_| ())
            .map_err(|e| self.failed("acknowledge messages of", e))
    }

    fn dead_letter(&mut self, message: &Message, error: &str) -> Result<()> {
        let mut command = redis::cmd("XADD");
        command
            .arg(format!("{}:dead-letter", self.key))
            .arg("*")
            .arg("id")
            .arg(message.id.to_string())
            .arg("error")
            .arg(error);
        for (field, value) in &message.fields {
            command.arg(field).arg(value.as_slice());
        }
        let connection = self.connection()?;
        let added: redis::RedisResult<Value> = command.query(connection);
        added
            .map(|_| ())
            .map_err(|e| self.failed("dead-letter a message of", e))
    }
}

impl Drop for RedisStreams {
    /// Releases the claim this holds, if it still holds it.
    fn drop(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        let release = redis::Script::new(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        );
        let claimer = self.claimer.clone();
        if let Ok(connection) = self.connection() {
            let released: redis::RedisResult<Value> =
                release.key(&claim).arg(claimer).invoke(connection);
            if let Err(e) = released {
                tracing::warn!(claim, error = %e, "could not release a claim; it expires by itself");
            }
        }
    }
}

/// `XINFO CONSUMERS`: each consumer's name, pending messages and idle milliseconds.
fn parse_consumers(reply: Value) -> Vec<(String, i64, i64)> {
    let Value::Array(consumers) = reply else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for consumer in consumers {
        let pairs: Vec<(Value, Value)> = match consumer {
            Value::Array(flat) => {
                let mut flat = flat.into_iter();
                std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
            }
            Value::Map(pairs) => pairs,
            _ => continue,
        };
        let (mut name, mut pending, mut idle) = (None, 0, 0);
        for (field, value) in pairs {
            let Some(field) = text(field) else { continue };
            match (field.as_slice(), value) {
                (b"name", value) => {
                    name = text(value).map(|n| String::from_utf8_lossy(&n).into_owned());
                }
                (b"pending", Value::Int(n)) => pending = n,
                (b"idle", Value::Int(n)) => idle = n,
                _ => {}
            }
        }
        if let Some(name) = name {
            out.push((name, pending, idle));
        }
    }
    out
}

fn text(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

//! The Redis store's async connection: one multiplexed connection shared by every caller on
//! the async runtime, for the online server's reads.
//!
//! Why one connection and not a pool: a multiplexed connection pipelines the commands of all
//! concurrent callers on one socket (its own driver task writes and reads them), so a request
//! waits for Redis without holding a thread and without taking a connection from anyone.
//! Redis executes commands one at a time anyway; on the machines measured, one socket carried
//! every request a server could send.
//!
//! **Lifecycle.** The connection is opened on first use, on the runtime of that first caller
//! (its driver task lives there), and shared from then on. Opening times out after
//! [`TIMEOUT`], and so does each command's answer (the connection's response timeout), so a
//! hung Redis fails a call with a timeout instead of leaving it waiting. A call whose
//! connection turns out broken (Redis restarted or killed, or the runtime that drove it gone)
//! forgets it and, if the connection was an older one, retries once on a fresh one: as the
//! blocking pool does, so a restart needs no restart of skewless, and a dead Redis costs one
//! refused connect per call until it is back. Concurrent callers that find no connection
//! open one between them, not one each.

use std::sync::{Mutex, PoisonError};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, FromRedisValue, Pipeline, RedisResult};

use super::redis_store::{TIMEOUT, is_broken};

/// A lazily opened, shared multiplexed connection to one Redis server. See the module docs.
pub(super) struct AsyncConnection {
    client: redis::Client,
    /// The open connection and its generation (which connection a failing call used, so that
    /// it does not forget a newer one another call already opened).
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    /// Held while opening, so concurrent callers open one connection between them.
    opening: tokio::sync::Mutex<u64>,
}

impl AsyncConnection {
    pub(super) fn new(client: redis::Client) -> Self {
        AsyncConnection {
            client,
            current: Mutex::new(None),
            opening: tokio::sync::Mutex::new(0),
        }
    }

    /// Runs `pipe` and reads its answers; see the module docs for the retry. Must be polled
    /// on a tokio runtime.
    pub(super) async fn query<T: FromRedisValue>(&self, pipe: &Pipeline) -> RedisResult<T> {
        let (generation, mut conn, reused) = self.connection().await?;
        match pipe.query_async(&mut conn).await {
            Err(e) if is_broken(&e) => {
                self.forget(generation);
                if !reused {
                    return Err(e);
                }
                let (generation, mut conn, _) = self.connection().await?;
                let result = pipe.query_async(&mut conn).await;
                if matches!(&result, Err(e) if is_broken(e)) {
                    self.forget(generation);
                }
                result
            }
            result => result,
        }
    }

    /// The open connection (and whether it was open already), or a new one.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection, bool)> {
        if let Some((generation, conn)) = self.current() {
            return Ok((generation, conn, true));
        }
        let mut opened = self.opening.lock().await;
        // Another caller may have opened one while this one waited.
        if let Some((generation, conn)) = self.current() {
            return Ok((generation, conn, true));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let conn = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *opened += 1;
        let generation = *opened;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, conn.clone()));
        Ok((generation, conn, false))
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Drops the connection of `generation` if it is still the current one.
    fn forget(&self, generation: u64) {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }
}

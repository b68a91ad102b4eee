//! Reading one's own writes: a query that names a position (`min_position`) is answered from
//! a read model that has applied it, checked in the query's own first round trip.
//!
//! The projection's checkpoint is the judge, as Redis holds it: a wake-up from this instance's
//! runner only says when to look. The look costs no round trip of its own. The `GET` of the
//! checkpoint is sent in one pipeline with the query's first request, ahead of it, on the same
//! connection ([`CheckedConnection`]). Redis runs a connection's commands in the order they
//! came, and a read model only moves forward, so a query whose checkpoint was at or past the
//! position read everything the position wrote. One that was short fails, waits for the runner
//! (or a pause, when the runner is elsewhere) and runs again: queries only read.
//!
//! Before, the wait asked for the checkpoint on its own, then the query read: one round trip
//! more for every such query, and two more when the position was not applied yet (ask, wait,
//! ask again, read).

use super::{QueryError, Reader};
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest a query waits, for the runner here or a pause, before it looks at a checkpoint
/// that had not reached its position again.
const LONGEST_PAUSE: Duration = Duration::from_millis(20);

/// A connection whose first request also reads a checkpoint, in the same pipeline and ahead of
/// it, and fails unless the checkpoint has reached a position. Later requests go as they are:
/// a query sends its requests one after another, each after the one before has answered, so
/// Redis runs them after the check too. Clones share the check.
#[derive(Clone)]
pub struct CheckedConnection {
    redis: ConnectionManager,
    check: Option<Arc<Check>>,
}

/// The check a [`CheckedConnection`] makes once.
struct Check {
    /// The checkpoint's key.
    checkpoint: String,
    /// The position the checkpoint must have reached.
    position: u64,
    outcome: Mutex<Outcome>,
}

impl Check {
    /// Records how the check came out, or that it must go again with the next request.
    fn settle(&self, outcome: Outcome) {
        *self.outcome.lock().expect("outcome") = outcome;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// No request has been sent yet.
    Unsent,
    /// The checkpoint had reached the position.
    Reached,
    /// The checkpoint had not: every request fails, so the query does.
    Short,
}

impl CheckedConnection {
    /// A connection that checks nothing.
    pub(super) fn plain(redis: ConnectionManager) -> Self {
        Self { redis, check: None }
    }

    /// The same connection, checking `checkpoint` against `position` on its next request.
    fn checking(&self, checkpoint: String, position: u64) -> Self {
        let outcome = Mutex::new(Outcome::Unsent);
        let check = Check { checkpoint, position, outcome };
        Self { redis: self.redis.clone(), check: Some(Arc::new(check)) }
    }

    fn outcome(&self) -> Outcome {
        self.check.as_ref().map_or(Outcome::Reached, |c| *c.outcome.lock().expect("outcome"))
    }

    /// The check to send with this request, if it is the first; an error if the check failed.
    fn take_check(&self) -> Result<Option<Arc<Check>>, RedisError> {
        let Some(check) = &self.check else { return Ok(None) };
        let mut outcome = check.outcome.lock().expect("outcome");
        match *outcome {
            Outcome::Unsent => {
                // Settled by the reply; counted as sent now so that no later request carries it.
                *outcome = Outcome::Reached;
                Ok(Some(check.clone()))
            }
            Outcome::Reached => Ok(None),
            Outcome::Short => Err(short()),
        }
    }

    /// Sends `pipeline` (`count` replies wanted) behind the checkpoint's `GET`, and settles the
    /// check with its reply.
    async fn send_checked(
        &mut self,
        check: &Check,
        pipeline: &Pipeline,
        count: usize,
    ) -> Result<Vec<Value>, RedisError> {
        let mut checked = redis::pipe();
        checked.cmd("GET").arg(&check.checkpoint);
        for cmd in pipeline.cmd_iter() {
            checked.add_command(cmd.clone());
        }
        let sent = self.redis.req_packed_commands(&checked, 0, count + 1).await;
        let mut replies = match sent {
            Ok(replies) => replies,
            Err(e) => {
                // Unanswered: the next request checks again.
                check.settle(Outcome::Unsent);
                return Err(e);
            }
        };
        let applied: Option<u64> = redis::from_redis_value(replies.remove(0))?;
        if applied.is_some_and(|a| a >= check.position) {
            return Ok(replies);
        }
        check.settle(Outcome::Short);
        Err(short())
    }
}

/// A request failed before it was sent, as the connection's future type.
fn failed<'a, T: Send + 'a>(error: RedisError) -> RedisFuture<'a, T> {
    Box::pin(std::future::ready(Err(error)))
}

/// What a request of a query whose checkpoint fell short fails with.
fn short() -> RedisError {
    RedisError::from((ErrorKind::Client, "the read model has not applied the position yet"))
}

/// Requests without a check go straight to the connection's own future: every query's request
/// passes here.
impl ConnectionLike for CheckedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let check = match self.take_check() {
            Ok(None) => return self.redis.req_packed_command(cmd),
            Ok(Some(check)) => check,
            Err(short) => return failed(short),
        };
        Box::pin(async move {
            let mut single = redis::pipe();
            single.add_command(cmd.clone());
            let mut replies = self.send_checked(&check, &single, 1).await?;
            Ok(replies.pop().unwrap_or(Value::Nil))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let check = match self.take_check() {
            Ok(None) => return self.redis.req_packed_commands(pipeline, offset, count),
            Ok(Some(check)) => check,
            Err(short) => return failed(short),
        };
        if pipeline.is_transaction() {
            // Rebuilt command by command, a transaction would lose its `MULTI`. Not sent.
            check.settle(Outcome::Unsent);
            let refused = "a checked read sends no transaction";
            return failed(RedisError::from((ErrorKind::Client, refused)));
        }
        Box::pin(async move { self.send_checked(&check, pipeline, count).await })
    }

    fn get_db(&self) -> i64 {
        self.redis.get_db()
    }
}

impl Reader {
    /// Runs `query` once `projection` has applied global `position` on this reader's Redis,
    /// waiting `timeout` at most (then [`QueryError::NotYetApplied`]).
    ///
    /// While this instance's runner of `projection` is running and has not applied the
    /// position, the query waits for it before asking Redis anything; otherwise (the runner
    /// runs elsewhere, or has applied it and this Redis is a replica not there yet) it asks
    /// again after a pause that doubles up to 20 ms.
    pub(super) async fn read_at<T, Q, F>(
        &self,
        projection: &'static str,
        position: u64,
        timeout: Duration,
        query: &Q,
    ) -> Result<T, QueryError>
    where
        Q: Fn(Reader) -> F,
        F: Future<Output = Result<T, QueryError>>,
    {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(1);
        let mut runner = self.applied.get(projection).cloned();
        let mut asked = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // The runner reports `position + 1` once it has applied `position`, 0 while it
            // does not run here.
            match runner.as_mut() {
                Some(applied) if (1..=position).contains(&*applied.borrow()) => {
                    let wait = applied.wait_for(|a| *a > position);
                    let _ = tokio::time::timeout(LONGEST_PAUSE.min(left), wait).await;
                }
                _ if asked => tokio::time::sleep(pause.min(left)).await,
                _ => {}
            }
            let ns = self.namespace(projection).await?;
            let checked = self.redis.checking(ns.checkpoint(), position);
            let answer = query(Reader { redis: checked.clone(), ..self.clone() }).await;
            if checked.outcome() != Outcome::Short {
                return answer;
            }
            if Instant::now() >= deadline {
                return Err(QueryError::NotYetApplied { projection, position });
            }
            asked = true;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }

    /// Waits until `projection` has applied global `position` on this reader's Redis, for at
    /// most `timeout`.
    pub async fn wait_for(
        &self,
        projection: &'static str,
        position: u64,
        timeout: Duration,
    ) -> Result<(), QueryError> {
        let ping = |reader: Reader| async move {
            let _: () = redis::cmd("PING").query_async(&mut reader.redis.clone()).await?;
            Ok(())
        };
        self.read_at(projection, position, timeout, &ping).await
    }
}

//! One batch, one transaction: how a runner folds a batch of events into its documents and
//! writes every change with the new checkpoint in a single `MULTI/EXEC`, fenced by `WATCH` on
//! that checkpoint. The runner module says why; ADR 0025, why each batch arms the next one's
//! fence.

use super::{parse_checkpoint, ProjectionError, Runner};
use crate::change::Change;
use crate::keys::status_key;
use crate::views::{changes, document_id, Fields, View};
use ordo_eventstore::clock::now_millis;
use ordo_eventstore::codec::AnyEvent;
use ordo_eventstore::{EventStore, Position, RecordedEvent};
use std::collections::HashMap;
use std::time::Instant;

impl<V: View, S: EventStore> Runner<V, S> {
    /// Folds one batch and writes it with its checkpoint, `through`, atomically. `through` is at
    /// least the batch's last position, and further when the feed read past events of other
    /// streams after it; then the batch may be empty, and only the checkpoint moves.
    pub async fn apply(
        &mut self,
        batch: &[RecordedEvent],
        through: Position,
    ) -> Result<(), ProjectionError> {
        if batch.is_empty() && self.checkpoint >= Some(through) {
            return Ok(());
        }
        // Disarmed from here on, unless the batch gets through to the reply that re-arms it.
        let armed = std::mem::take(&mut self.fence_armed);
        // Likewise the cache's completeness: documents are taken out of the cache below, and
        // a batch that fails leaves them out.
        let complete = std::mem::take(&mut self.cache_is_complete);
        let started = Instant::now();
        let mut decoded = Vec::new();
        for event in batch {
            if let Some(id) = document_id::<V>(event) {
                let any = AnyEvent::from_recorded(event).map_err(|source| {
                    ProjectionError::Codec { position: event.position.0, source }
                })?;
                decoded.push((id.to_owned(), any, event));
            }
        }
        // A complete cache holds every document there is: one it lacks does not exist yet, and
        // nothing needs reading (a rebuild's batches are mostly new documents).
        let mut missing: Vec<String> = decoded
            .iter()
            .map(|(id, ..)| id.clone())
            .filter(|id| !complete && !self.cache.contains(id))
            .collect();
        missing.sort_unstable();
        missing.dedup();

        // Round trip 1, unless the last batch armed the fence and every document is in
        // memory: fence the checkpoint and read the documents not in memory.
        let documents: Vec<HashMap<String, String>> = if armed && missing.is_empty() {
            Vec::new()
        } else {
            let mut read = redis::pipe();
            if !armed {
                read.cmd("WATCH").arg(self.ns.checkpoint()).ignore();
                read.cmd("GET").arg(self.ns.checkpoint());
            }
            for id in &missing {
                read.cmd("HGETALL").arg(V::key(&self.ns, id));
            }
            let mut values: Vec<redis::Value> = read.query_async(&mut self.redis).await?;
            if !armed {
                let stored =
                    redis::from_redis_value(values.remove(0)).map_err(redis::RedisError::from)?;
                if parse_checkpoint(stored) != self.checkpoint {
                    let _: () = redis::cmd("UNWATCH").query_async(&mut self.redis).await?;
                    return Err(ProjectionError::Fenced(self.ns.prefix().to_owned()));
                }
            }
            values
                .into_iter()
                .map(redis::from_redis_value)
                .collect::<Result<_, _>>()
                .map_err(redis::RedisError::from)?
        };
        let mut docs: HashMap<String, (Option<V>, Option<V>)> = HashMap::new();
        for (id, fields) in missing.into_iter().zip(documents) {
            let view = if fields.is_empty() { None } else { V::from_fields(&Fields(fields)) };
            docs.insert(id, (view.clone(), view));
        }
        for (id, event, recorded) in &decoded {
            let entry = match docs.get_mut(id) {
                Some(entry) => entry,
                None => {
                    // Taken, not cloned: the batch's result goes back in when it is written.
                    let cached = self.cache.pop(id).flatten();
                    docs.entry(id.clone()).or_insert((cached.clone(), cached))
                }
            };
            entry.1 = V::apply(entry.1.take(), event, recorded);
        }

        // The last round trip: every write and the checkpoint, atomically, then the fence for the
        // next batch: `WATCH` again and read the checkpoint back. Written out rather than
        // `Pipeline::atomic`, which cannot send anything after its `EXEC`.
        let mut write = redis::pipe();
        write.cmd("MULTI").ignore();
        let mut grouped = Grouped::default();
        for (id, (old, new)) in &docs {
            for change in changes(&self.ns, id, old.as_ref(), new.as_ref()) {
                grouped.push(&mut write, change);
            }
        }
        grouped.add_to(&mut write);
        write.cmd("SET").arg(self.ns.checkpoint()).arg(through.0).ignore();
        if self.checkpoint.is_none() {
            // The namespace's first batch: everything in it is written by this layout.
            write.cmd("SET").arg(V::layout_key(&self.ns)).arg(V::LAYOUT).ignore();
        }
        self.add_status(&mut write, through, batch.last()).await;
        write.cmd("EXEC");
        write.cmd("WATCH").arg(self.ns.checkpoint()).ignore();
        write.cmd("GET").arg(self.ns.checkpoint());
        // A command the transaction refused fails the whole reply (errors inside `EXEC`'s
        // array included), and so does the batch.
        let (done, after): (redis::Value, Option<String>) =
            write.query_async(&mut self.redis).await?;
        if done == redis::Value::Nil {
            return Err(ProjectionError::Fenced(self.ns.prefix().to_owned()));
        }
        // Read back after the `WATCH`: if it is this batch's, any later write to it makes the
        // next batch's `EXEC` fail. If not, someone wrote it just after this batch; the next
        // batch fences again and finds out.
        self.fence_armed = parse_checkpoint(after) == Some(through);

        let mut evicted_any = false;
        for (id, (_, new)) in docs {
            evicted_any |=
                self.cache.push(id, new).is_some_and(|(evicted, _)| !self.cache.contains(&evicted));
        }
        self.cache_is_complete = complete && !evicted_any;
        self.events_read += match self.checkpoint {
            _ if !self.store.positions_count_events() => batch.len() as u64,
            Some(previous) => through.0.saturating_sub(previous.0),
            None => through.0 + 1,
        };
        self.checkpoint = Some(through);
        self.events_applied += batch.len() as u64;
        self.applied.send_replace(through.0 + 1);
        metrics::counter!("ordo_projection_events_applied_total", "projection" => V::PROJECTION)
            .increment(batch.len() as u64);
        metrics::histogram!("ordo_projection_batch_seconds", "projection" => V::PROJECTION)
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Adds the status update (position, lag, update time) to the batch's transaction, so it
    /// costs no round trip of its own and always agrees with the checkpoint. The lag in seconds
    /// is the age of the batch's newest event while the log has more; a batch without events
    /// read to the end of the log, so it reports none.
    async fn add_status(
        &self,
        write: &mut redis::Pipeline,
        through: Position,
        newest: Option<&RecordedEvent>,
    ) {
        let head = self.store.last_position().await.ok().flatten().map_or(through, |p| p);
        // A distance in events only where positions count events (not on KurrentDB); the
        // lag in seconds holds everywhere.
        let lag_events = if self.store.positions_count_events() {
            head.0.saturating_sub(through.0).to_string()
        } else {
            String::new()
        };
        let lag_seconds = match newest {
            Some(event) if head > through => {
                (now_millis() - event.recorded_at).max(0) as f64 / 1_000.0
            }
            _ => 0.0,
        };
        if let Ok(events) = lag_events.parse::<f64>() {
            metrics::gauge!("ordo_projection_lag_events", "projection" => V::PROJECTION)
                .set(events);
        }
        metrics::gauge!("ordo_projection_lag_seconds", "projection" => V::PROJECTION)
            .set(lag_seconds);
        write
            .cmd("HSET")
            .arg(status_key(V::PROJECTION))
            .arg("version")
            .arg(self.ns.version)
            .arg("position")
            .arg(through.0)
            .arg("lag_events")
            .arg(lag_events)
            .arg("lag_seconds")
            .arg(lag_seconds)
            .arg("updated_at")
            .arg(now_millis())
            .arg("last_error")
            .arg("")
            .ignore();
    }
}

/// A batch's changes to sets, sorted sets and whole string values, one command per key and
/// kind (`MSET` and `DEL` for all the strings): a batch of new products adds hundreds of them to
/// the same search sets (a prefix's, a category's), a batch of orders writes hundreds of
/// documents, and each command in a transaction costs Redis a queued copy and a dispatch of its
/// own. Grouping reorders nothing that matters: a batch changes each document once, so it adds
/// a member to a key or removes it at most once, never both, and sets or deletes a document's
/// string at most once; no other change touches these keys.
#[derive(Default)]
struct Grouped {
    sorted_adds: HashMap<String, Vec<(f64, String)>>,
    sorted_removals: HashMap<String, Vec<String>>,
    set_adds: HashMap<String, Vec<String>>,
    set_removals: HashMap<String, Vec<String>>,
    strings: Vec<(String, String)>,
    deletions: Vec<String>,
}

impl Grouped {
    /// Keeps `change` for its group, or adds it to `pipe` at once if it has none (hashes).
    fn push(&mut self, pipe: &mut redis::Pipeline, change: Change) {
        match change {
            Change::ZAdd { key, score, member } => {
                self.sorted_adds.entry(key).or_default().push((score, member))
            }
            Change::ZRem { key, member } => {
                self.sorted_removals.entry(key).or_default().push(member)
            }
            Change::SAdd { key, member } => self.set_adds.entry(key).or_default().push(member),
            Change::SRem { key, member } => self.set_removals.entry(key).or_default().push(member),
            Change::Set { key, value } => self.strings.push((key, value)),
            Change::Delete { key } => self.deletions.push(key),
            Change::SetFields { fields, .. } if fields.is_empty() => {}
            Change::SetFields { key, fields } => {
                let cmd = pipe.cmd("HSET").arg(key);
                for (field, value) in fields {
                    cmd.arg(field).arg(value);
                }
                cmd.ignore();
            }
            Change::HSetField { key, field, value } => {
                pipe.cmd("HSET").arg(key).arg(field).arg(value).ignore();
            }
            Change::HDel { key, field } => {
                pipe.cmd("HDEL").arg(key).arg(field).ignore();
            }
        }
    }

    /// The grouped commands, added to the batch's transaction.
    fn add_to(self, pipe: &mut redis::Pipeline) {
        for (key, members) in self.sorted_adds {
            let cmd = pipe.cmd("ZADD").arg(key);
            for (score, member) in members {
                cmd.arg(score).arg(member);
            }
            cmd.ignore();
        }
        for (key, members) in self.sorted_removals {
            pipe.cmd("ZREM").arg(key).arg(members).ignore();
        }
        for (key, members) in self.set_adds {
            pipe.cmd("SADD").arg(key).arg(members).ignore();
        }
        for (key, members) in self.set_removals {
            pipe.cmd("SREM").arg(key).arg(members).ignore();
        }
        if !self.strings.is_empty() {
            pipe.cmd("MSET").arg(self.strings).ignore();
        }
        if !self.deletions.is_empty() {
            pipe.cmd("DEL").arg(self.deletions).ignore();
        }
    }
}

//! The single writer thread: group commit.
//!
//! Appenders send requests over a bounded channel (backpressure when the disk cannot keep up).
//! The writer takes the first waiting request plus everything queued behind it, applies them all
//! in one redb write transaction, commits once (one fsync), and only then answers each caller.
//! A request that fails its own checks (wrong version, reused id) is answered with that error
//! and writes nothing; the others in the batch still commit. A storage failure aborts the whole
//! transaction and every caller in it hears about it: nothing is acknowledged that is not durable.

use super::schema::*;
use crate::error::StoreError;
use crate::model::{AppendOutcome, ExpectedVersion, NewEvent, Position, StreamName};
use redb::{Database, Durability as RedbDurability, ReadableTable, Table, WriteTransaction};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};

/// How hard each commit works to reach the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// fsync before acknowledging: an acknowledged event survives power loss. The default.
    #[default]
    Fsync,
    /// Acknowledge before fsync; fsync at most every 50 ms and whenever the writer goes idle.
    /// Any crash (of the process or the machine) may lose up to the last 50 ms of acknowledged
    /// events: redb reopens at the last durable commit. For benchmarks and bulk imports.
    Relaxed,
}

impl Durability {
    /// Name used in configuration and benchmark output.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::Relaxed => "relaxed",
        }
    }
}

/// Most events one transaction takes; bounds commit latency under heavy load.
pub const MAX_BATCH_EVENTS: usize = 8_192;
const RELAXED_SYNC_INTERVAL: Duration = Duration::from_millis(50);

/// Counters the writer keeps, for benchmarks and metrics: how well group commit is batching
/// and where the writer's time goes.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Write transactions committed.
    pub commits: AtomicU64,
    /// Append requests answered.
    pub requests: AtomicU64,
    /// Events written.
    pub events: AtomicU64,
    /// Microseconds spent applying requests inside transactions (checks, encoding, inserts).
    pub apply_micros: AtomicU64,
    /// Microseconds spent in `commit` (page writes and fsync).
    pub commit_micros: AtomicU64,
}

/// One caller's append.
pub struct AppendRequest {
    pub stream: StreamName,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<AppendOutcome, StoreError>>,
}

/// Where the chain stands: the next position and the hash it must follow.
#[derive(Clone, Copy)]
pub struct ChainHead {
    pub next_position: u64,
    pub last_hash: [u8; HASH_LEN],
    pub last_recorded_at: i64,
}

/// Runs until every sender is gone, then returns.
pub fn run(
    db: Arc<Database>,
    mut head: ChainHead,
    durability: Durability,
    mut requests: mpsc::Receiver<AppendRequest>,
    published: watch::Sender<u64>,
    stats: Arc<WriterStats>,
) {
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    while let Some(first) = requests.blocking_recv() {
        let mut batch = vec![first];
        let mut events = batch[0].events.len();
        while events < MAX_BATCH_EVENTS {
            let Ok(next) = requests.try_recv() else { break };
            events += next.events.len();
            batch.push(next);
        }
        let sync = durability == Durability::Fsync || last_sync.elapsed() >= RELAXED_SYNC_INTERVAL;
        match commit_batch(&db, head, &batch, sync, &stats) {
            Ok((new_head, outcomes)) => {
                stats.commits.fetch_add(1, Relaxed);
                stats.requests.fetch_add(batch.len() as u64, Relaxed);
                stats.events.fetch_add(new_head.next_position - head.next_position, Relaxed);
                head = new_head;
                if sync {
                    last_sync = Instant::now();
                    unsynced = false;
                } else {
                    unsynced = true;
                }
                published.send_replace(head.next_position);
                for (request, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = request.reply.send(outcome);
                }
            }
            Err(error) => {
                tracing::error!(%error, "event store commit failed; the batch is rejected");
                let message = error.to_string();
                for request in batch {
                    let _ = request.reply.send(Err(StoreError::Storage(message.clone())));
                }
            }
        }
        if unsynced && requests.is_empty() {
            if let Err(error) = sync_now(&db) {
                tracing::error!(%error, "event store fsync failed");
            } else {
                last_sync = Instant::now();
                unsynced = false;
            }
        }
    }
    if unsynced {
        let _ = sync_now(&db);
    }
}

/// An empty durable commit: persists every earlier non-durable commit.
fn sync_now(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.commit()?;
    Ok(())
}

type Outcomes = Vec<Result<AppendOutcome, StoreError>>;

fn commit_batch(
    db: &Database,
    mut head: ChainHead,
    batch: &[AppendRequest],
    sync: bool,
    stats: &WriterStats,
) -> Result<(ChainHead, Outcomes), StoreError> {
    let started = Instant::now();
    let mut txn = db.begin_write()?;
    txn.set_durability(if sync { RedbDurability::Immediate } else { RedbDurability::None })?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    // Recorded times never go backwards, even if the wall clock does.
    head.last_recorded_at = head.last_recorded_at.max(now);
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut tables = Tables::open(&txn)?;
        for request in batch {
            outcomes.push(tables.apply(&mut head, request)?);
        }
    }
    let applied = Instant::now();
    commit(txn)?;
    stats.apply_micros.fetch_add(micros(applied - started), Relaxed);
    stats.commit_micros.fetch_add(micros(applied.elapsed()), Relaxed);
    Ok((head, outcomes))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn commit(txn: WriteTransaction) -> Result<(), StoreError> {
    txn.commit().map_err(StoreError::from)
}

struct Tables<'t> {
    events: Table<'t, u64, &'static [u8]>,
    index: Table<'t, (&'static str, u64), u64>,
    streams: Table<'t, &'static str, u64>,
    ids: Table<'t, u128, u64>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        Ok(Tables {
            events: txn.open_table(EVENTS)?,
            index: txn.open_table(STREAM_INDEX)?,
            streams: txn.open_table(STREAMS)?,
            ids: txn.open_table(EVENT_IDS)?,
        })
    }

    /// Applies one request. The outer error is a storage failure (abort the batch); the inner
    /// one is this request's own rejection (nothing written for it).
    fn apply(
        &mut self,
        head: &mut ChainHead,
        r: &AppendRequest,
    ) -> Result<Result<AppendOutcome, StoreError>, StoreError> {
        if let Some(earlier) = self.earlier_outcome(r)? {
            return Ok(earlier);
        }
        let actual = self.streams.get(r.stream.as_str())?.map(|v| v.value());
        if !r.expected.matches(actual) {
            return Ok(Err(StoreError::WrongExpectedVersion {
                stream: r.stream.to_string(),
                expected: r.expected,
                actual,
            }));
        }
        let first_version = actual.map_or(0, |v| v + 1);
        for (i, event) in r.events.iter().enumerate() {
            let version = first_version + i as u64;
            let position = head.next_position;
            let body = StoredBody {
                id: *event.id.as_bytes(),
                stream: r.stream.to_string(),
                version,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                recorded_at: head.last_recorded_at,
                correlation_id: event.metadata.correlation_id.map(|u| *u.as_bytes()),
                causation_id: event.metadata.causation_id.map(|u| *u.as_bytes()),
                headers: event
                    .metadata
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                payload: event.payload.clone(),
            };
            let (record, hash) = encode_record(&head.last_hash, position, &body)?;
            self.events.insert(position, record.as_slice())?;
            self.index.insert((r.stream.as_str(), version), position)?;
            self.ids.insert(event.id.as_u128(), position)?;
            head.next_position += 1;
            head.last_hash = hash;
        }
        let version = first_version + r.events.len() as u64 - 1;
        self.streams.insert(r.stream.as_str(), version)?;
        Ok(Ok(AppendOutcome { first_version, version, position: Position(head.next_position - 1) }))
    }

    /// If these event ids were stored before (a retry), the first append's outcome; an error if
    /// they were stored with other content or only some of them were.
    fn earlier_outcome(
        &self,
        r: &AppendRequest,
    ) -> Result<Option<Result<AppendOutcome, StoreError>>, StoreError> {
        let mut unique = HashSet::with_capacity(r.events.len());
        let mut found = Vec::with_capacity(r.events.len());
        for event in &r.events {
            if !unique.insert(event.id) {
                return Ok(Some(Err(conflict(event.id, "the id appears twice in one append"))));
            }
            found.push(self.ids.get(event.id.as_u128())?.map(|p| p.value()));
        }
        match found.iter().filter(|p| p.is_some()).count() {
            0 => return Ok(None),
            n if n < found.len() => {
                let id = r.events[found.iter().position(Option::is_some).unwrap_or(0)].id;
                return Ok(Some(Err(conflict(id, "a retry must resend exactly the same events"))));
            }
            _ => {}
        }
        let mut first_version = 0;
        let mut version = 0;
        let mut position = 0;
        for (i, (event, stored_at)) in r.events.iter().zip(&found).enumerate() {
            let position_i = stored_at.unwrap_or_default();
            let Some(record) = self.events.get(position_i)? else {
                return Err(StoreError::Corrupt {
                    position: position_i,
                    reason: "indexed event missing".into(),
                });
            };
            let (_, body) = split_record(position_i, record.value())?;
            let stored = decode_body(position_i, body)?;
            if stored.stream != r.stream.as_str() {
                return Ok(Some(Err(conflict(
                    event.id,
                    &format!("it belongs to stream {}", stored.stream),
                ))));
            }
            if stored.event_type != event.event_type || stored.payload != event.payload {
                return Ok(Some(Err(conflict(event.id, "the type or payload differs"))));
            }
            if i == 0 {
                first_version = stored.version;
            } else if stored.version != version + 1 {
                return Ok(Some(Err(conflict(
                    event.id,
                    "the events were stored in another order",
                ))));
            }
            version = stored.version;
            position = position_i;
        }
        Ok(Some(Ok(AppendOutcome { first_version, version, position: Position(position) })))
    }
}

fn conflict(id: uuid::Uuid, reason: &str) -> StoreError {
    StoreError::EventIdConflict { id, reason: reason.to_owned() }
}

//! The single writer thread: group commit.
//!
//! Appenders send requests over a bounded channel (backpressure when the disk cannot keep up).
//! The writer takes the first waiting request plus everything queued behind it, applies them all
//! in one redb write transaction, commits once (one fsync), and only then answers each caller.
//! A request that fails its own checks (wrong version, reused id) is answered with that error
//! and writes nothing; the others in the batch still commit. A storage failure aborts the whole
//! transaction and every caller in it hears about it: nothing is acknowledged that is not durable.

use super::apply::Tables;
use super::index::{PendingIndex, PendingStream};
use super::schema::*;
use crate::error::StoreError;
use crate::model::{AppendOutcome, StreamAppend};
use redb::{Database, Durability as RedbDurability, WriteTransaction};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
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
    /// events: redb reopens at the last durable commit. For benchmarks and bulk imports; the
    /// file cannot be shared with read-only processes meanwhile.
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
/// While requests keep arriving, the writer waits this long for the next one before committing.
const LINGER_QUIET: Duration = Duration::from_micros(30);
/// ... but never longer than this in total.
const LINGER_MAX: Duration = Duration::from_micros(250);

/// A writer that has had no request for this long is idle: it moves the in-memory index to
/// disk then, keeping open-time rebuilds short without making any caller wait for it.
const IDLE_AFTER: Duration = Duration::from_millis(250);

/// The in-memory index shared by the writer (sole mutator) and readers.
pub type SharedIndex = Arc<RwLock<PendingIndex>>;

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
    /// Times the in-memory index went to disk: with a commit that filled it, or when idle.
    pub index_flushes: AtomicU64,
}

/// One caller's append: one part, or several streams in one commit (all or none).
pub struct AppendRequest {
    pub parts: Vec<StreamAppend>,
    /// Recording times to keep instead of now, one per event of the first part: only for
    /// imports, which append one part.
    pub recorded_at: Option<Vec<i64>>,
    pub reply: oneshot::Sender<Result<Vec<AppendOutcome>, StoreError>>,
}

impl AppendRequest {
    fn events(&self) -> usize {
        self.parts.iter().map(|p| p.events.len()).sum()
    }
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
    db: Arc<super::Db>,
    mut head: ChainHead,
    config: super::EmbeddedConfig,
    mut requests: mpsc::Receiver<AppendRequest>,
    published: watch::Sender<u64>,
    stats: Arc<WriterStats>,
    index: SharedIndex,
) {
    let mut last_sync = Instant::now();
    let mut unsynced = false;
    let super::Db::Writable(db) = &*db else { return };
    let durability = config.durability;
    let flush_at = config.index_flush_events.max(1);
    // Only to wait for a request with a timeout; the writer's work stays on this thread.
    let timer = tokio::runtime::Builder::new_current_thread().enable_time().build().ok();
    loop {
        let idle = || match flush_now(db, head, &index) {
            Ok(()) => {
                stats.index_flushes.fetch_add(1, Relaxed);
                Some(Instant::now())
            }
            Err(error) => {
                tracing::error!(%error, "event store index flush failed");
                None
            }
        };
        let (next, flushed) = next_request(&mut requests, timer.as_ref(), &index, idle);
        if let Some(synced) = flushed {
            last_sync = synced;
            unsynced = false;
        }
        let Some(first) = next else { break };
        let batch = collect_batch(first, &mut requests);
        let sync = durability == Durability::Fsync || last_sync.elapsed() >= RELAXED_SYNC_INTERVAL;
        let started = Instant::now();
        match commit_batch(db, head, &batch, sync, &stats, &index, flush_at) {
            Ok((new_head, outcomes)) => {
                let events = new_head.next_position - head.next_position;
                metrics::histogram!("ordo_store_commit_seconds", "store" => "embedded")
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!("ordo_store_events_per_commit", "store" => "embedded")
                    .record(events as f64);
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
                let message = match error {
                    StoreError::Storage(message) => message,
                    other => other.to_string(),
                };
                for request in batch {
                    let _ = request.reply.send(Err(StoreError::Storage(message.clone())));
                }
            }
        }
        if unsynced && requests.is_empty() {
            if let Err(error) = sync_now(db) {
                tracing::error!(%error, "event store fsync failed");
            } else {
                last_sync = Instant::now();
                unsynced = false;
            }
        }
    }
    if unsynced {
        let _ = sync_now(db);
    }
}

/// The next request (`None` once every sender is gone), and when the index was flushed while
/// waiting for it. While the in-memory index holds entries, the writer waits at most
/// [`IDLE_AFTER`] for a request; if none comes it is idle, and `flush` runs then, when no
/// caller waits behind it, rather than in the first commit after a pause, which a crowd
/// arriving at once would all wait for.
fn next_request(
    requests: &mut mpsc::Receiver<AppendRequest>,
    timer: Option<&tokio::runtime::Runtime>,
    index: &SharedIndex,
    flush: impl FnOnce() -> Option<Instant>,
) -> (Option<AppendRequest>, Option<Instant>) {
    match requests.try_recv() {
        Ok(request) => return (Some(request), None),
        Err(mpsc::error::TryRecvError::Disconnected) => return (None, None),
        Err(mpsc::error::TryRecvError::Empty) => {}
    }
    let mut flushed = None;
    if let (Some(timer), true) = (timer, pending_events(index) > 0) {
        // (The timeout must be made inside the runtime it waits on.)
        let next = async { tokio::time::timeout(IDLE_AFTER, requests.recv()).await };
        if let Ok(next) = timer.block_on(next) {
            return (next, None);
        }
        flushed = flush();
    }
    (requests.blocking_recv(), flushed)
}

fn pending_events(index: &SharedIndex) -> usize {
    index.read().map_or(0, |p| p.events)
}

/// A durable commit that only moves the in-memory index to disk.
fn flush_now(db: &Database, head: ChainHead, index: &SharedIndex) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let pending =
            index.read().map_err(|_| StoreError::Storage("index lock poisoned".into()))?;
        write_index(&txn, &pending, head.next_position)?;
    }
    txn.commit()?;
    *index.write().map_err(|_| StoreError::Storage("index lock poisoned".into()))? =
        PendingIndex::default();
    Ok(())
}

/// Writes `pending` into the on-disk index tables and marks positions below `through` indexed.
fn write_index(
    txn: &WriteTransaction,
    pending: &PendingIndex,
    through: u64,
) -> Result<(), StoreError> {
    let mut index = txn.open_table(STREAM_INDEX)?;
    let mut streams = txn.open_table(STREAMS)?;
    let mut ids = txn.open_table(EVENT_IDS)?;
    let mut marks = txn.open_table(MARKS)?;
    let mut sorted: Vec<(&String, &PendingStream)> = pending.streams.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (stream, entries) in sorted {
        for (i, position) in entries.positions.iter().enumerate() {
            index.insert((stream.as_str(), entries.first_version + i as u64), *position)?;
        }
        if let Some(last) = entries.last_version() {
            streams.insert(stream.as_str(), last)?;
        }
    }
    let mut sorted_ids: Vec<(&u128, &u64)> = pending.ids.iter().collect();
    sorted_ids.sort_unstable();
    for (id, position) in sorted_ids {
        ids.insert(*id, *position)?;
    }
    marks.insert(INDEXED_THROUGH, through)?;
    Ok(())
}

/// Takes `first` plus everything queued behind it, then lingers briefly while more requests
/// are still arriving.
///
/// Why linger: without it, 64 concurrent writers settle into two alternating groups of 32 (one
/// group queues while the other's commit is in flight), so every fsync carries half the events
/// it could. Callers answered by the last commit resubmit within tens of microseconds; waiting
/// for them roughly doubles the events per fsync. A lone writer pays one quiet window.
fn collect_batch(
    first: AppendRequest,
    requests: &mut mpsc::Receiver<AppendRequest>,
) -> Vec<AppendRequest> {
    let mut events = first.events();
    let mut batch = vec![first];
    let started = Instant::now();
    let mut last_arrival = started;
    while events < MAX_BATCH_EVENTS {
        match requests.try_recv() {
            Ok(next) => {
                events += next.events();
                batch.push(next);
                last_arrival = Instant::now();
            }
            Err(mpsc::error::TryRecvError::Empty)
                if batch.len() > 1
                    && last_arrival.elapsed() < LINGER_QUIET
                    && started.elapsed() < LINGER_MAX =>
            {
                std::thread::yield_now();
            }
            Err(_) => break,
        }
    }
    batch
}

/// An empty durable commit: persists every earlier non-durable commit.
fn sync_now(db: &Database) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    txn.commit()?;
    Ok(())
}

type Outcomes = Vec<Result<Vec<AppendOutcome>, StoreError>>;

fn commit_batch(
    db: &Database,
    mut head: ChainHead,
    batch: &[AppendRequest],
    sync: bool,
    stats: &WriterStats,
    index: &SharedIndex,
    flush_at: usize,
) -> Result<(ChainHead, Outcomes), StoreError> {
    let poisoned = || StoreError::Storage("index lock poisoned".into());
    let started = Instant::now();
    let mut txn = db.begin_write()?;
    txn.set_durability(if sync { RedbDurability::Immediate } else { RedbDurability::None })?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    // Recorded times never go backwards, even if the wall clock does.
    head.last_recorded_at = head.last_recorded_at.max(now);
    let mut outcomes = Vec::with_capacity(batch.len());
    let flushed;
    let overlay = {
        let pending = index.read().map_err(|_| poisoned())?;
        let mut tables = Tables::open(&txn, &pending)?;
        for request in batch {
            outcomes.push(tables.apply(&mut head, request)?);
        }
        // Table handles must close before the index tables are opened again for the flush.
        let overlay = tables.into_overlay();
        flushed = pending.events + overlay.events >= flush_at;
        if flushed {
            stats.index_flushes.fetch_add(1, Relaxed);
            write_index(&txn, &pending, head.next_position)?;
            write_index(&txn, &overlay, head.next_position)?;
        }
        overlay
    };
    let applied = Instant::now();
    commit(txn)?;
    stats.apply_micros.fetch_add(micros(applied - started), Relaxed);
    stats.commit_micros.fetch_add(micros(applied.elapsed()), Relaxed);
    // Publish the batch's index entries before anyone hears about the batch.
    let mut pending = index.write().map_err(|_| poisoned())?;
    if flushed {
        *pending = PendingIndex::default();
    } else {
        pending.absorb(overlay);
    }
    Ok((head, outcomes))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn commit(txn: WriteTransaction) -> Result<(), StoreError> {
    txn.commit().map_err(StoreError::from)
}

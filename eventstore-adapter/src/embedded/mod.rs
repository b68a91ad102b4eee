//! The embedded backend, Ordo's default: one redb file, no server to run.
//!
//! Writes go through one writer thread doing group commit (`writer`); reads open their own
//! redb read transactions (MVCC snapshots), so readers never block the writer and never see a
//! half-applied append. Subscriptions read the log by position and sleep on a watch channel
//! that the writer bumps after each commit.

mod index;
pub(crate) mod schema;
mod subscription;
mod writer;

pub use subscription::EmbeddedSubscription;
pub use writer::{Durability, WriterStats, MAX_BATCH_EVENTS};

use crate::error::StoreError;
use crate::model::*;
use crate::store::EventStore;
use index::{PendingIndex, PendingStream};
use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata,
};
use schema::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot, watch};

/// Largest payload bytes one append may carry; keeps one caller from stalling a batch.
pub const MAX_APPEND_BYTES: usize = 16 * 1024 * 1024;
const REQUEST_QUEUE: usize = 4_096;

/// Settings of the embedded store.
#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    /// The redb file; created if missing.
    pub path: PathBuf,
    /// fsync policy; [`Durability::Fsync`] unless you accept losing the last moments on power loss.
    pub durability: Durability,
    /// Events kept in the in-memory stream index before it is written to disk in bulk
    /// (see the `index` module). Larger: cheaper commits, longer rebuild at open.
    pub index_flush_events: usize,
    /// Open for reading only, beside a writer in another process (`ordo serve`): for replay,
    /// audit, export and rebuild. Appends fail with [`StoreError::ReadOnly`]; new events are
    /// noticed by polling the file. Meant for tools that run and exit: the handle's in-memory
    /// index of new events is never flushed, so it grows with what the writer appends.
    pub read_only: bool,
    /// Keep the file to this process: no read-only handles beside it (no `ordo rebuild`,
    /// replay or audit while serving), in exchange for cheaper commits (measured: about
    /// 0.1 ms less per commit, roughly 10% more appends per second under load).
    pub exclusive: bool,
}

impl EmbeddedConfig {
    /// Defaults for the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::default(),
            index_flush_events: index::FLUSH_EVENTS,
            read_only: false,
            exclusive: false,
        }
    }

    /// The same file, opened read-only.
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }
}

/// What [`EmbeddedStore::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// Chain hash after the last event, hex; changes if anything before it changes.
    pub head_hash: String,
}

/// The redb handle: the writing process's, or a read-only one beside it.
pub(crate) enum Db {
    Writable(Database),
    ReadOnly(ReadOnlyDatabase),
}

impl Db {
    fn begin_read(&self) -> Result<ReadTransaction, redb::TransactionError> {
        match self {
            Db::Writable(db) => db.begin_read(),
            Db::ReadOnly(db) => db.begin_read(),
        }
    }
}

/// How a read-only handle learns about new events: it polls the file.
const READ_ONLY_POLL: std::time::Duration = std::time::Duration::from_millis(25);

struct Inner {
    db: Arc<Db>,
    /// Set on read-only handles, which publish their own head after scanning new events.
    refresh: Option<Mutex<watch::Sender<u64>>>,
    path: PathBuf,
    requests: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    head: watch::Receiver<u64>,
    stats: Arc<WriterStats>,
    index: writer::SharedIndex,
}

use writer::AppendRequest;

impl Drop for Inner {
    /// Dropping the last handle closes the store cleanly: the writer finishes what it accepted
    /// and releases the file, so the next open (even a read-only one) needs no repair.
    fn drop(&mut self) {
        self.stop_writer();
    }
}

impl Inner {
    /// Closes the request queue and waits for the writer to finish what it accepted.
    fn stop_writer(&self) {
        drop(self.requests.lock().map(|mut r| r.take()));
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

/// The embedded event store. Cheap to clone; clones share one file and one writer.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

fn open_error(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Open { path: path.to_owned(), reason: reason.to_string() }
}

impl EmbeddedStore {
    /// Opens (or creates) the store file and starts its writer.
    ///
    /// A file that is not an Ordo store, is truncated or corrupt, or is held by another process
    /// fails here with an error naming the file, before anything is read or written.
    pub fn open(config: EmbeddedConfig) -> Result<Self, StoreError> {
        let path = config.path.clone();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| open_error(&path, e))?;
        }
        let existed = path.exists();
        let mut builder = Database::builder();
        // One writing process, any number of read-only ones (replay, audit, rebuild). redb
        // only allows non-durable commits when no other process can look, so the relaxed
        // mode keeps the file to itself.
        builder.set_concurrency_mode(
            if config.exclusive || config.durability == Durability::Relaxed {
                ConcurrencyMode::ExclusiveWriter
            } else {
                ConcurrencyMode::SingleWriter
            },
        );
        if config.read_only {
            if !existed {
                return Err(open_error(&path, "no such file"));
            }
            let db =
                builder.open_read_only(&path).map_err(|e| open_error(&path, describe_open(e)))?;
            let db = Db::ReadOnly(db);
            let (head, pending) = scan_file(&db).map_err(|e| open_error(&path, e))?;
            let (tx, head_rx) = watch::channel(head.next_position);
            return Ok(EmbeddedStore {
                inner: Arc::new(Inner {
                    db: Arc::new(db),
                    refresh: Some(Mutex::new(tx)),
                    path,
                    requests: Mutex::new(None),
                    writer: Mutex::new(None),
                    head: head_rx,
                    stats: Arc::new(WriterStats::default()),
                    index: Arc::new(RwLock::new(pending)),
                }),
            });
        }
        let db = builder.create(&path).map_err(|e| open_error(&path, describe_open(e)))?;
        init_tables(&db, existed).map_err(|e| open_error(&path, e))?;
        let db = Arc::new(Db::Writable(db));
        let (head, pending) = scan_file(&db).map_err(|e| open_error(&path, e))?;
        let index = Arc::new(RwLock::new(pending));
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let (published, head_rx) = watch::channel(head.next_position);
        let writer_db = db.clone();
        let stats = Arc::new(WriterStats::default());
        let writer_stats = stats.clone();
        let writer_index = index.clone();
        let writer = std::thread::Builder::new()
            .name("ordo-store-writer".into())
            .spawn(move || {
                writer::run(
                    writer_db,
                    head,
                    config.clone(),
                    rx,
                    published,
                    writer_stats,
                    writer_index,
                )
            })
            .map_err(|e| open_error(&path, e))?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                db,
                refresh: None,
                path,
                requests: Mutex::new(Some(tx)),
                writer: Mutex::new(Some(writer)),
                head: head_rx,
                stats,
                index,
            }),
        })
    }

    /// Appends recorded events of one stream from another store (an export), keeping their
    /// ids, order and recording times: how a log moves between stores. Meant for a store that
    /// held nothing when the import began, so positions and versions come out as they were.
    pub async fn import(&self, events: Vec<RecordedEvent>) -> Result<AppendOutcome, StoreError> {
        let mut outcomes = self.import_all(vec![events]).await?;
        outcomes.pop().ok_or(StoreError::EmptyAppend)
    }

    /// Imports many runs of events (see [`EmbeddedStore::import`]) in order without waiting
    /// for each: the writer takes requests first in, first out, so order is kept, and it
    /// commits many runs per transaction. Returns each run's outcome.
    pub async fn import_all(
        &self,
        runs: Vec<Vec<RecordedEvent>>,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let sender = self.sender()?;
        let mut answers = Vec::with_capacity(runs.len());
        for events in runs {
            let ImportRun { stream, expected, events, recorded_at } = ImportRun::new(events)?;
            let (reply, answer) = oneshot::channel();
            let request =
                AppendRequest { stream, expected, events, recorded_at: Some(recorded_at), reply };
            sender.send(request).await.map_err(|_| StoreError::Closed)?;
            answers.push(answer);
        }
        let mut outcomes = Vec::with_capacity(answers.len());
        for answer in answers {
            outcomes.push(answer.await.map_err(|_| StoreError::Closed)??);
        }
        Ok(outcomes)
    }

    /// Whether this handle is read-only.
    pub fn is_read_only(&self) -> bool {
        self.inner.refresh.is_some()
    }

    /// On a read-only handle, picks up events the writing process appended since the last
    /// look: extends the in-memory index and publishes the new head. A no-op for the writer.
    pub(crate) fn refresh(&self) -> Result<(), StoreError> {
        let Some(refresh) = &self.inner.refresh else { return Ok(()) };
        let published =
            refresh.lock().map_err(|_| StoreError::Storage("refresh lock poisoned".into()))?;
        let known = *published.borrow();
        let txn = self.inner.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let mut index = self
            .inner
            .index
            .write()
            .map_err(|_| StoreError::Storage("index lock poisoned".into()))?;
        let next = index_from(&events, known, &mut index)?.unwrap_or(known);
        drop(index);
        if next > known {
            published.send_replace(next);
        }
        Ok(())
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Number of events in the log (the next position to be written).
    pub fn len(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// The writer's counters since open.
    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops accepting appends, waits for the writer to finish what it accepted, and flushes.
    /// Appends after this fail with [`StoreError::Closed`]; reads keep working on this handle.
    pub fn close(&self) {
        self.inner.stop_writer();
    }

    /// Walks the whole log: positions contiguous, every record decodes, every chain hash
    /// matches. The error names the first bad position.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let txn = self.inner.db.begin_read()?;
        let events = txn.open_table(EVENTS)?;
        let mut previous = GENESIS;
        let mut expected = 0u64;
        for entry in events.iter()? {
            let (key, value) = entry?;
            let position = key.value();
            if position != expected {
                return Err(StoreError::Corrupt {
                    position: expected,
                    reason: "event missing from the log".into(),
                });
            }
            let (stored, body) = split_record(position, value.value())?;
            if chain_hash(&previous, position, body) != stored {
                return Err(StoreError::Corrupt {
                    position,
                    reason: "hash chain mismatch: the event was altered".into(),
                });
            }
            decode_body(position, body)?;
            previous = stored;
            expected += 1;
        }
        Ok(VerifyReport { events: expected, head_hash: hex(&previous) })
    }

    fn sender(&self) -> Result<mpsc::Sender<AppendRequest>, StoreError> {
        self.inner.requests.lock().ok().and_then(|r| r.clone()).ok_or(StoreError::Closed)
    }

    /// Reads up to `limit` events from position `from` on.
    ///
    /// A page at the live edge (the last [`LIVE_EDGE`] events) is read on the caller's thread:
    /// its pages were just written, so they are in redb's cache and the read takes microseconds,
    /// less than handing it to a blocking thread and back. Every follower (three projections,
    /// checkout, the outbox) reads there after each commit; profiles of the HTTP mix showed
    /// those hand-offs among the server's largest costs. Older pages (catch-up, rebuilds,
    /// exports) may need the disk and are read on a blocking thread.
    pub(crate) async fn read_page(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let db = self.inner.db.clone();
        let read = move || {
            let txn = db.begin_read()?;
            let events = txn.open_table(EVENTS)?;
            let mut out = Vec::with_capacity(limit.min(4_096));
            for entry in events.range(from..)?.take(limit) {
                let (key, value) = entry?;
                out.push(to_recorded(key.value(), value.value())?);
            }
            Ok(out)
        };
        if self.len().saturating_sub(from) <= LIVE_EDGE {
            read()
        } else {
            blocking(read).await
        }
    }

    /// This stream's entries in the in-memory index, if it has any.
    fn recent(&self, stream: &StreamName) -> Result<Option<PendingStream>, StoreError> {
        let index = self
            .inner
            .index
            .read()
            .map_err(|_| StoreError::Storage("index lock poisoned".into()))?;
        Ok(index.streams.get(stream.as_str()).cloned())
    }

    pub(crate) fn head_watch(&self) -> watch::Receiver<u64> {
        self.inner.head.clone()
    }
}

/// Creates the tables of a new file, or checks the format of an existing one.
fn init_tables(db: &Database, existed: bool) -> Result<(), StoreError> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let format = meta.get("format")?.map(|f| f.value().to_owned());
        match format.as_deref() {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(StoreError::Storage(format!("unsupported store format {other:?}")))
            }
            None if existed && txn.list_tables()?.count() > 1 => {
                return Err(StoreError::Storage("not an Ordo event store".into()));
            }
            None => {
                meta.insert("format", FORMAT)?;
            }
        }
        txn.open_table(EVENTS)?;
        txn.open_table(STREAM_INDEX)?;
        txn.open_table(STREAMS)?;
        txn.open_table(EVENT_IDS)?;
        txn.open_table(MARKS)?;
    }
    txn.commit()?;
    Ok(())
}

/// Finds the chain head and rebuilds the in-memory index of the events after the on-disk
/// index's mark.
fn scan_file(db: &Db) -> Result<(writer::ChainHead, PendingIndex), StoreError> {
    let txn = db.begin_read()?;
    let format = txn
        .open_table(META)
        .ok()
        .and_then(|m| m.get("format").ok().flatten().map(|f| f.value().to_owned()));
    if format.as_deref() != Some(FORMAT) {
        return Err(StoreError::Storage(format!("not an Ordo event store of format {FORMAT}")));
    }
    let events = txn.open_table(EVENTS)?;
    let Some((key, value)) = events.last()? else {
        let head = writer::ChainHead { next_position: 0, last_hash: GENESIS, last_recorded_at: 0 };
        return Ok((head, PendingIndex::default()));
    };
    let position = key.value();
    if events.len()? != position + 1 {
        return Err(StoreError::Corrupt { position, reason: "the log has gaps".into() });
    }
    let (hash, body) = split_record(position, value.value())?;
    let last = decode_body(position, body)?;
    let head = writer::ChainHead {
        next_position: position + 1,
        last_hash: hash,
        last_recorded_at: last.recorded_at,
    };
    let mark = txn.open_table(MARKS)?.get(INDEXED_THROUGH)?.map_or(0, |m| m.value());
    let mut pending = PendingIndex::default();
    index_from(&events, mark, &mut pending)?;
    Ok((head, pending))
}

/// Adds every event from position `from` on to `index`; returns the position after the last
/// one, or `None` if there was none.
fn index_from(
    events: &redb::ReadOnlyTable<u64, &[u8]>,
    from: u64,
    index: &mut PendingIndex,
) -> Result<Option<u64>, StoreError> {
    let mut next = None;
    for entry in events.range(from..)? {
        let (key, value) = entry?;
        let (_, body) = split_record(key.value(), value.value())?;
        let b = decode_body(key.value(), body)?;
        index.add(&b.stream, b.version, key.value(), u128::from_be_bytes(b.id));
        next = Some(key.value() + 1);
    }
    Ok(next)
}

fn describe_open(e: redb::DatabaseError) -> String {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            "the file is already open in another process".into()
        }
        // A read-only handle cannot repair: the file was left open by a writer that did not
        // close it (SIGKILL, power loss). Opening it for writing repairs it.
        redb::DatabaseError::RepairAborted => "it was not closed cleanly (its server was killed) \
             and a read-only open cannot repair it; with no server running, run `ordo repair` \
             (or start `ordo serve`), then try again"
            .into(),
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
            format!("the file is corrupt ({why})")
        }
        other => other.to_string(),
    }
}

/// Bytes as lower-case hex (chain heads in reports).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far behind the head a read still counts as live (see [`EmbeddedStore::read_page`]). It
/// also bounds the work such a read does on an async worker: at most this many events, a
/// fraction of a millisecond. Followers in step with the writer read a few dozen at a time.
const LIVE_EDGE: u64 = 256;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Storage(format!("reader task failed: {e}")))?
}

impl EventStore for EmbeddedStore {
    type Subscription = EmbeddedSubscription;

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        if self.is_read_only() {
            return Err(StoreError::ReadOnly);
        }
        if events.is_empty() {
            return Err(StoreError::EmptyAppend);
        }
        let bytes: usize = events.iter().map(|e| e.payload.len()).sum();
        if bytes > MAX_APPEND_BYTES {
            return Err(StoreError::AppendTooLarge { bytes, limit: MAX_APPEND_BYTES });
        }
        let (reply, answer) = oneshot::channel();
        let request =
            AppendRequest { stream: stream.clone(), expected, events, recorded_at: None, reply };
        self.sender()?.send(request).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.refresh()?;
        let db = self.inner.db.clone();
        // Snapshot the in-memory index before opening the read transaction (see `index`).
        let recent = self.recent(stream)?;
        let stream = stream.clone();
        blocking(move || {
            let txn = db.begin_read()?;
            let index = txn.open_table(STREAM_INDEX)?;
            let events = txn.open_table(EVENTS)?;
            let name = stream.as_str();
            // On-disk entries cover versions below `split`; the snapshot covers the rest.
            let split = recent.as_ref().map_or(u64::MAX, |r| r.first_version);
            let disk = |range: std::ops::RangeInclusive<u64>| -> Result<Vec<u64>, StoreError> {
                let (lo, hi) = (*range.start(), (*range.end()).min(split.saturating_sub(1)));
                if split == 0 || lo > hi {
                    return Ok(vec![]);
                }
                let found = index.range((name, lo)..=(name, hi))?;
                Ok(found.map(|e| e.map(|(_, p)| p.value())).collect::<Result<_, _>>()?)
            };
            let memory = |lo: u64, hi: u64| -> Vec<u64> {
                recent.as_ref().map_or_else(Vec::new, |r| {
                    (lo.max(r.first_version)..=hi.min(r.last_version().unwrap_or(0)))
                        .filter_map(|v| r.position(v))
                        .collect()
                })
            };
            let positions: Vec<u64> = match direction {
                Direction::Forward => {
                    let mut p = disk(from..=u64::MAX)?;
                    p.extend(memory(from, u64::MAX));
                    p.truncate(limit);
                    p
                }
                Direction::Backward => {
                    let mut p = memory(0, from);
                    p.reverse();
                    let mut older = disk(0..=from)?;
                    older.reverse();
                    p.extend(older);
                    p.truncate(limit);
                    p
                }
            };
            let mut out = Vec::with_capacity(positions.len());
            for position in positions {
                let record = events.get(position)?.ok_or_else(|| StoreError::Corrupt {
                    position,
                    reason: "indexed event missing".into(),
                })?;
                out.push(to_recorded(position, record.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let start = from.first_counted_position();
        self.read_page(start, limit).await
    }

    async fn last_position(&self) -> Result<Option<Position>, StoreError> {
        self.refresh()?;
        Ok(self.len().checked_sub(1).map(Position))
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        self.refresh()?;
        if let Some(last) = self.recent(stream)?.and_then(|r| r.last_version()) {
            return Ok(Some(last));
        }
        let txn = self.inner.db.begin_read()?;
        let streams = txn.open_table(STREAMS)?;
        Ok(streams.get(stream.as_str())?.map(|v| v.value()))
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> Result<EmbeddedSubscription, StoreError> {
        Ok(EmbeddedSubscription::new(self.clone(), from, filter))
    }
}

//! Opening a store file: creating it or checking its format, finding the head of its hash
//! chain, rebuilding the in-memory index of the events the on-disk stream index does not
//! cover yet, and starting the writer thread. Every way an open can fail is named here, before
//! anything is read or written.

use super::index::PendingIndex;
use super::schema::*;
use super::writer::{self, Durability, WriterStats};
use super::{Db, EmbeddedConfig, EmbeddedStore, Inner, REQUEST_QUEUE};
use crate::error::StoreError;
use redb::{ConcurrencyMode, Database, ReadableTable, ReadableTableMetadata};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::{mpsc, watch};

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
        let (db, aside) = match builder.create(&path) {
            Err(e) if unreadable_format(&e) => {
                match set_aside_if_unfinished(&path).map_err(|e| open_error(&path, e))? {
                    Some(aside) => (builder.create(&path), Some(aside)),
                    None => (Err(e), None),
                }
            }
            created => (created, None),
        };
        let db = db.map_err(|e| open_error(&path, describe_open(e)))?;
        if let Some(aside) = &aside {
            tracing::warn!(
                file = %path.display(), set_aside = %aside.display(),
                "the store file was never fully created (its first start was killed); it held \
                 no events, so it was set aside and a new one created"
            );
        }
        init_tables(&db, existed && aside.is_none()).map_err(|e| open_error(&path, e))?;
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
}

/// Whether redb refused the file's format (rather than failed to read it or found it locked):
/// what a file without redb's magic number gets.
fn unreadable_format(e: &redb::DatabaseError) -> bool {
    matches!(e, redb::DatabaseError::Storage(redb::StorageError::Io(io))
        if io.kind() == std::io::ErrorKind::InvalidData)
}

/// Where redb's file format begins: its magic number, written last when a file is created.
const REDB_MAGIC_LEN: usize = 9;

/// redb creates a file by sizing it and writing its header, then, only once that is on disk,
/// the magic number at its start (so a half-made file is never taken for a database); it
/// refuses any non-empty file without one. A server killed in that moment of its very first
/// start leaves a file that can never be opened, though it cannot hold an event (nothing
/// commits before the magic number). Such a file (non-empty, its first bytes all zero), once
/// redb has refused it (so no other process is creating it), is renamed
/// `<file>.unfinished-<unix ms>`, never deleted, so that a new store can be created. Any other
/// file redb refuses stays where it is, and the open fails naming it.
fn set_aside_if_unfinished(path: &Path) -> std::io::Result<Option<PathBuf>> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut start = Vec::with_capacity(REDB_MAGIC_LEN);
    file.by_ref().take(REDB_MAGIC_LEN as u64).read_to_end(&mut start)?;
    if start.is_empty() || start.iter().any(|b| *b != 0) {
        return Ok(None);
    }
    let millis = crate::clock::now_millis();
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".unfinished-{millis}"));
    let aside = PathBuf::from(aside);
    drop(file);
    std::fs::rename(path, &aside)?;
    Ok(Some(aside))
}

fn open_error(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Open { path: path.to_owned(), reason: reason.to_string() }
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
pub(super) fn index_from(
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

//! The processes' durable state: the checkout process's checkpoint and every open cart's due
//! time, written in one transaction, so that the due times always match the events the
//! checkpoint says were handled. One server on the embedded store keeps it in
//! `<data dir>/processes.redb`; servers sharing a store keep it in the store's database
//! (PostgreSQL) or in Redis (KurrentDB, or `--coordination redis`), where a new holder of the
//! checkout role continues from the last one's state and a holder that lost its lease cannot
//! save (ADR 0012).

use crate::leases::Lease;
use crate::redis_shared::RedisShared;
use ordo_eventstore::postgres::PostgresStore;
use ordo_eventstore::StoreError;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Process name -> last handled global position.
const CHECKPOINTS: TableDefinition<&str, u64> = TableDefinition::new("checkpoints");
/// Open cart -> when it falls due (Unix ms).
const CART_DUE: TableDefinition<&str, i64> = TableDefinition::new("cart_due");

/// Why the process state failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state file failed; the cause is kept.
    #[error("the process state file failed")]
    File(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The shared state in the store's database failed (transient) or refused a holder that
    /// lost its lease ([`StoreError::Fenced`]).
    #[error(transparent)]
    Shared(#[from] StoreError),
}

impl StateError {
    /// Whether the saver lost its lease: it must step down, not retry.
    pub fn is_fenced(&self) -> bool {
        matches!(self, StateError::Shared(StoreError::Fenced { .. }))
    }

    /// Whether retrying may get past it (the database was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, StateError::Shared(e) if e.is_transient())
    }
}

fn state_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StateError {
    StateError::File(e.into())
}

/// Checkpoints and cart due times: in a local file, or shared in the store's database.
pub enum ProcessState {
    /// `<data dir>/processes.redb`, for one server on its own store.
    File(FileState),
    /// The PostgreSQL store's `checkpoints` and `cart_due` tables.
    Shared(PostgresStore),
    /// Hashes in Redis, for stores with no database to share (KurrentDB).
    Redis(RedisShared),
}

impl ProcessState {
    /// The last position `process` handled.
    pub async fn checkpoint(&self, process: &str) -> Result<Option<u64>, StateError> {
        match self {
            ProcessState::File(file) => file.checkpoint(process),
            ProcessState::Shared(store) => Ok(store.process_checkpoint(process).await?),
            ProcessState::Redis(redis) => Ok(redis.process_checkpoint(process).await?),
        }
    }

    /// Every open cart's due time.
    pub async fn carts_due(&self) -> Result<BTreeMap<String, i64>, StateError> {
        match self {
            ProcessState::File(file) => file.carts_due(),
            ProcessState::Shared(store) => Ok(store.carts_due().await?),
            ProcessState::Redis(redis) => Ok(redis.carts_due().await?),
        }
    }

    /// Stores `process`'s checkpoint and the cart due changes (`None`: no longer due) in one
    /// transaction, while `lease` is still this instance's.
    pub async fn save(
        self: &Arc<Self>,
        process: &'static str,
        lease: &Lease,
        position: u64,
        due: HashMap<String, Option<i64>>,
    ) -> Result<(), StateError> {
        match &**self {
            ProcessState::Shared(store) => {
                Ok(store.save_process_state(process, lease.fence(), position, &due).await?)
            }
            ProcessState::Redis(redis) => {
                Ok(redis.save_process_state(process, lease.fence(), position, &due).await?)
            }
            // Written to the file without waiting for the disk: microseconds, on this thread.
            ProcessState::File(file) if !file.sync_due() => {
                file.save(process, position, &due, false)
            }
            ProcessState::File(_) => {
                let this = self.clone();
                tokio::task::spawn_blocking(move || match &*this {
                    ProcessState::File(file) => file.save(process, position, &due, true),
                    ProcessState::Shared(_) | ProcessState::Redis(_) => Ok(()),
                })
                .await
                .map_err(state_error)?
            }
        }
    }
}

/// How often a save of the file waits for the disk (fsync); the saves between are written
/// without waiting. A crash loses at most the saves since the last one that waited, and the
/// process then handles those events again: its commands carry ids derived from the events,
/// so a repeat appends nothing, and the payment provider is asked with the order's key
/// (ADR 0009). Waiting for the disk on every save was 7% of the server's CPU in a flash sale
/// (`ordo bench hot-sku`), where every cart change is a batch of the checkout process.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints and cart due times, in `<data dir>/processes.redb`.
pub struct FileState {
    db: redb::Database,
    /// When a save last waited for the disk.
    synced: Mutex<Option<Instant>>,
}

impl FileState {
    /// Opens or creates the file.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let db = redb::Database::create(path).map_err(state_error)?;
        let write = db.begin_write().map_err(state_error)?;
        write.open_table(CHECKPOINTS).map_err(state_error)?;
        write.open_table(CART_DUE).map_err(state_error)?;
        write.commit().map_err(state_error)?;
        Ok(Self { db, synced: Mutex::new(None) })
    }

    /// Whether the next save should wait for the disk ([`SYNC_EVERY`]).
    pub fn sync_due(&self) -> bool {
        let synced = self.synced.lock().map(|s| *s).unwrap_or(None);
        synced.is_none_or(|at| at.elapsed() >= SYNC_EVERY)
    }

    /// The last position `process` handled.
    pub fn checkpoint(&self, process: &str) -> Result<Option<u64>, StateError> {
        let read = self.db.begin_read().map_err(state_error)?;
        let table = read.open_table(CHECKPOINTS).map_err(state_error)?;
        Ok(table.get(process).map_err(state_error)?.map(|v| v.value()))
    }

    /// Every open cart's due time.
    pub fn carts_due(&self) -> Result<BTreeMap<String, i64>, StateError> {
        let read = self.db.begin_read().map_err(state_error)?;
        let table = read.open_table(CART_DUE).map_err(state_error)?;
        let mut due = BTreeMap::new();
        for entry in table.iter().map_err(state_error)? {
            let (cart, at) = entry.map_err(state_error)?;
            due.insert(cart.value().to_owned(), at.value());
        }
        Ok(due)
    }

    /// Stores `process`'s checkpoint and the cart due changes (`None`: no longer due) in one
    /// transaction; with `sync`, once it is on the disk. Without, a crash may lose it, and
    /// the file reopens at the last save that was synced, its checkpoint and due times
    /// together (redb's commits are atomic either way).
    pub fn save(
        &self,
        process: &str,
        position: u64,
        due: &HashMap<String, Option<i64>>,
        sync: bool,
    ) -> Result<(), StateError> {
        let mut write = self.db.begin_write().map_err(state_error)?;
        let durability = if sync { redb::Durability::Immediate } else { redb::Durability::None };
        write.set_durability(durability).map_err(state_error)?;
        {
            let mut checkpoints = write.open_table(CHECKPOINTS).map_err(state_error)?;
            checkpoints.insert(process, position).map_err(state_error)?;
            let mut carts = write.open_table(CART_DUE).map_err(state_error)?;
            for (cart, at) in due {
                match at {
                    Some(at) => carts.insert(cart.as_str(), *at).map_err(state_error)?,
                    None => carts.remove(cart.as_str()).map_err(state_error)?,
                };
            }
        }
        write.commit().map_err(state_error)?;
        if sync {
            if let Ok(mut synced) = self.synced.lock() {
                *synced = Some(Instant::now());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(changes: &[(&str, Option<i64>)]) -> HashMap<String, Option<i64>> {
        changes.iter().map(|(cart, at)| ((*cart).to_owned(), *at)).collect()
    }

    #[test]
    fn given_a_save_that_did_not_wait_for_the_disk_when_the_file_is_reopened_then_it_is_there() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("processes.redb");
        let file = FileState::open(&path).expect("opened");
        // Given a first save, which waits for the disk, and one right after it, which does not
        assert!(file.sync_due(), "a new file's first save waits for the disk");
        file.save("checkout", 10, &due(&[("cart-1", Some(5))]), true).expect("saved");
        assert!(!file.sync_due(), "the next save within SYNC_EVERY does not");
        let changes = due(&[("cart-1", None), ("cart-2", Some(7))]);
        file.save("checkout", 20, &changes, false).expect("saved");
        // When the server stops and starts again
        drop(file);
        let file = FileState::open(&path).expect("reopened");
        // Then the file holds the last save, its checkpoint and due times together
        assert_eq!(file.checkpoint("checkout").expect("read"), Some(20));
        let carts = file.carts_due().expect("read");
        assert_eq!(carts, BTreeMap::from([("cart-2".to_owned(), 7)]));
    }
}

//! Everything that can go wrong in a store, in terms a caller can act on.

use crate::model::ExpectedVersion;
use std::path::PathBuf;
use uuid::Uuid;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream name breaks the naming rules.
    #[error("invalid stream name {name:?}: {reason}")]
    InvalidStreamName {
        /// The rejected name.
        name: String,
        /// Which rule it broke.
        reason: String,
    },
    /// The optimistic concurrency check failed: someone else wrote first.
    #[error("wrong expected version for {stream}: expected {expected}, stream is at {}", actual.map_or("no stream".to_owned(), |v| format!("version {v}")))]
    WrongExpectedVersion {
        /// The stream.
        stream: String,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// Where the stream really is (`None`: it does not exist).
        actual: Option<u64>,
    },
    /// An event id was reused for different content, or a retry only partly matches.
    #[error("event id {id} was already used for different content: {reason}")]
    EventIdConflict {
        /// The reused id.
        id: Uuid,
        /// What differs.
        reason: String,
    },
    /// An append with no events.
    #[error("an append needs at least one event")]
    EmptyAppend,
    /// An append over the size limit.
    #[error("append of {bytes} bytes exceeds the limit of {limit} bytes")]
    AppendTooLarge {
        /// Size requested.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The store cannot do this (an append to several streams on a backend without
    /// transactions across streams).
    #[error("this event store does not support {0}")]
    Unsupported(&'static str),
    /// An append to several streams named one stream twice.
    #[error("stream {0} appears twice in one append")]
    StreamTwice(String),
    /// The store file could not be opened.
    #[error("cannot open event store {}: {reason}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why, in words.
        reason: String,
    },
    /// Stored data failed an integrity check.
    #[error("event store is corrupt at position {position}: {reason}")]
    Corrupt {
        /// First bad position.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// The storage engine failed (I/O, disk full, ...). The store stays readable.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The store was opened read-only.
    #[error("the event store is open read-only")]
    ReadOnly,
    /// The store is shutting down.
    #[error("the event store is closed")]
    Closed,
    /// The KurrentDB server or client failed in a way a retry may get past (not the leader,
    /// unavailable, deadline exceeded, connection lost).
    #[error("KurrentDB: {0}")]
    Kurrent(String),
    /// KurrentDB refused the call for good (stream deleted, access denied, malformed, not
    /// supported): retrying the same call cannot succeed.
    #[error("KurrentDB refused: {0}")]
    KurrentRefused(String),
    /// PostgreSQL failed or could not be reached.
    #[error("PostgreSQL")]
    Postgres(#[from] tokio_postgres::Error),
    /// A write made as the holder of a role's lease, after another instance took the role
    /// over: this instance must step down (ADR 0012).
    #[error("the lease on {role} at epoch {epoch} was taken over; stepping down")]
    Fenced {
        /// The role.
        role: String,
        /// The epoch this instance held.
        epoch: i64,
    },
    /// The PostgreSQL schema is newer than this code knows.
    #[error("the PostgreSQL schema {schema} is at version {found}; this Ordo knows up to {known}: upgrade Ordo")]
    SchemaTooNew {
        /// The schema name.
        schema: String,
        /// Its migration version.
        found: i32,
        /// The newest this code applies.
        known: i32,
    },
}

impl StoreError {
    /// Whether retrying the same call later may succeed (I/O trouble, a closed connection).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Storage(_)
                | StoreError::Kurrent(_)
                | StoreError::Closed
                | StoreError::Postgres(_)
        )
    }
}

impl From<redb::Error> for StoreError {
    fn from(e: redb::Error) -> Self {
        StoreError::Storage(e.to_string())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::from(redb::Error::from(e))
            }
        }
    )*};
}

from_redb!(
    redb::StorageError,
    redb::TransactionError,
    redb::TableError,
    redb::CommitError,
    redb::SetDurabilityError
);

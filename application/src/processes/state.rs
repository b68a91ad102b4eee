//! The processes' durable state in `<data dir>/processes.redb`: the checkout process's
//! checkpoint and every open cart's due time, written in one transaction, so that the due
//! times always match the events the checkpoint says were handled.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Process name -> last handled global position.
const CHECKPOINTS: TableDefinition<&str, u64> = TableDefinition::new("checkpoints");
/// Open cart -> when it falls due (Unix ms).
const CART_DUE: TableDefinition<&str, i64> = TableDefinition::new("cart_due");

/// Why the process state file failed; the cause is kept.
#[derive(Debug, thiserror::Error)]
#[error("the process state file failed")]
pub struct StateError(#[source] Box<dyn std::error::Error + Send + Sync>);

fn state_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StateError {
    StateError(e.into())
}

/// Checkpoints and cart due times, in `<data dir>/processes.redb`.
pub struct ProcessState {
    db: redb::Database,
}

impl ProcessState {
    /// Opens or creates the file.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let db = redb::Database::create(path).map_err(state_error)?;
        let write = db.begin_write().map_err(state_error)?;
        write.open_table(CHECKPOINTS).map_err(state_error)?;
        write.open_table(CART_DUE).map_err(state_error)?;
        write.commit().map_err(state_error)?;
        Ok(Self { db })
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
    /// transaction.
    pub fn save(
        &self,
        process: &str,
        position: u64,
        due: &HashMap<String, Option<i64>>,
    ) -> Result<(), StateError> {
        let write = self.db.begin_write().map_err(state_error)?;
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
        write.commit().map_err(state_error)
    }
}

//! `audit verify`: is the log intact and readable by today's code?
//!
//! Two checks, shared by `ordo audit verify` and the staff console (`POST /v1/admin/audit`):
//! the hash chain over the global log (embedded and PostgreSQL stores; KurrentDB has none),
//! then every event decoded with today's codec, counting those upcast from an older schema.

use crate::codec::AnyEvent;
use crate::error::StoreError;
use crate::{AnyStore, EventStore, SubscribeFrom};

/// Events read per page while decoding.
const PAGE: usize = 4_096;

/// What an audit found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The hash chain: `(events, head hash)`; `None` where the store keeps no chain.
    pub chain: Option<(u64, String)>,
    /// Events decoded.
    pub events: u64,
    /// Events stored under an older schema version and upcast when decoded.
    pub upcast: u64,
}

impl Report {
    /// One line for people: what was checked and what it found.
    pub fn summary(&self, store_kind: &str) -> String {
        let chain = match &self.chain {
            Some((events, head)) => {
                format!(
                    "hash chain intact over {events} events (head {})",
                    &head[..16.min(head.len())]
                )
            }
            None => format!("no hash chain on {store_kind} (not checked)"),
        };
        format!(
            "verified {} events: {chain}; every event decodes with today's code ({} upcast from older schema versions)",
            self.events, self.upcast
        )
    }
}

/// Why an audit failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log is damaged or holds an event today's code cannot read.
    #[error("audit failed at position {position}: {reason}")]
    Failed {
        /// First bad position.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// The store could not be read; the audit proved nothing either way.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AuditError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { position, reason } => AuditError::Failed { position, reason },
            other => AuditError::Store(other),
        }
    }
}

/// Verifies the chain, then decodes every event; `progress` hears the count so far.
pub async fn verify(store: &AnyStore, mut progress: impl FnMut(u64)) -> Result<Report, AuditError> {
    let chain = store.verify_chain().await?;
    let (mut events, mut upcast) = (0u64, 0u64);
    let mut from = SubscribeFrom::Start;
    loop {
        let page = store.read_all(from, PAGE).await?;
        let Some(last) = page.last() else { break };
        from = SubscribeFrom::After(last.position);
        for event in &page {
            let decoded = AnyEvent::from_recorded(event).map_err(|e| AuditError::Failed {
                position: event.position.0,
                reason: format!(
                    "{} v{} does not decode: {e}",
                    event.event_type, event.schema_version
                ),
            })?;
            let current =
                decoded.encode().map(|c| c.schema_version).unwrap_or(event.schema_version);
            upcast += u64::from(current != event.schema_version);
        }
        events += page.len() as u64;
        progress(events);
    }
    Ok(Report { chain, events, upcast })
}

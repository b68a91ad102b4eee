//! A command that carries another stream's events into its commit (ADR 0022): the events are
//! decided on their own aggregate first ([`Repository::prepare`]), ride with the command
//! ([`Repository::execute_joined`]) so both land or neither, and are then taken into their
//! aggregate's cache ([`Repository::adopt`]). A cart line and its hold on the product commit
//! this way, and so do a checkout's order and its cart's close.

use super::{encode_all, Answer, CommandContext, CommandError, Inner, Receipt, Repository};
use crate::codec::DomainEvent;
use crate::error::StoreError;
use crate::model::{AppendOutcome, ExpectedVersion, StreamAppend, StreamName};
use crate::store::EventStore;
use ordo_domain::Decider;

/// A command's events decided and encoded, not yet appended ([`Repository::prepare`]).
#[derive(Clone, Debug)]
pub struct Prepared<E> {
    /// The events, for the aggregate's cache and the receipt.
    pub events: Vec<E>,
    /// The same events encoded, expecting the stream where they were decided.
    pub append: StreamAppend,
    decided_on: Option<u64>,
}

impl<D, S> Repository<D, S>
where
    D: Decider + 'static,
    D::State: Clone + Send + Sync + 'static,
    D::Event: DomainEvent + Send + Sync + 'static,
    D::Command: Clone + Send + Sync + 'static,
    D::Error: std::error::Error + Send + 'static,
    S: EventStore,
{
    /// Runs `command` as [`Repository::execute`] does, committing `companion` (another
    /// stream's events, from [`Repository::prepare`]) in the same commit as the command's own
    /// events: both or neither. A refused command appends neither; a command that changes
    /// nothing appends the companion alone. If the companion's stream moved since it was
    /// prepared, the answer is that stream's [`StoreError::WrongExpectedVersion`] and nothing
    /// is appended. Only on stores that [append together](EventStore::appends_together).
    pub async fn execute_joined(
        &self,
        id: &str,
        command: &D::Command,
        context: &CommandContext,
        companion: StreamAppend,
    ) -> Answer<D> {
        if !self.inner.store.appends_together() {
            let refused = StoreError::Unsupported("appends to several streams in one commit");
            return Err(CommandError::Store(refused));
        }
        self.submit(id, command, context, Some(companion)).await
    }

    /// Decides `command` on the aggregate `id` without appending: its events, encoded for
    /// another stream's command to carry ([`Repository::execute_joined`]) at the version they
    /// were decided on. Hand the outcome back with [`Repository::adopt`]. No events: nothing
    /// to change (or a keyed retry whose step was taken).
    pub async fn prepare(
        &self,
        id: &str,
        command: &D::Command,
        context: &CommandContext,
    ) -> Result<Prepared<D::Event>, CommandError<D::Error>> {
        let stream = self.stream(id)?;
        let cell = self.inner.cell(&stream);
        let mut slot = cell.slot.lock().await;
        let loaded = self.inner.current(&stream, &mut slot).await?;
        let events = match D::decide(command, &loaded.state) {
            Ok(events) => events,
            Err(_) if loaded.took(context) => vec![],
            Err(refusal) => return Err(CommandError::Domain(refusal)),
        };
        let encoded = encode_all(&events, context)?;
        let expected = ExpectedVersion::from_loaded(loaded.version);
        let append = StreamAppend { stream, expected, events: encoded };
        Ok(Prepared { events, append, decided_on: loaded.version })
    }

    /// Takes prepared events that another stream's command committed (`outcome`, from its
    /// receipt's `joined`) into the cached aggregate, and returns their receipt. If the
    /// stream moved in between, the cache is dropped and read again when next needed.
    pub async fn adopt(
        &self,
        id: &str,
        prepared: Prepared<D::Event>,
        outcome: &AppendOutcome,
    ) -> Answer<D> {
        let stream = self.stream(id)?;
        let cell = self.inner.cell(&stream);
        let mut slot = cell.slot.lock().await;
        let Prepared { events, append, decided_on } = prepared;
        let next = decided_on.map_or(0, |v| v + 1);
        match slot.loaded.as_mut() {
            Some(loaded) if loaded.version == decided_on && outcome.first_version == next => {
                let state = std::mem::replace(&mut loaded.state, D::initial_state());
                loaded.state = events.iter().fold(state, D::evolve);
                loaded.version = Some(outcome.version);
                loaded.remember(append.events.iter().map(|e| e.id));
            }
            _ => slot.loaded = None,
        }
        if !self.inner.store.is_shared() {
            cell.refresh(&slot);
        }
        Ok(Receipt {
            stream,
            events,
            version: Some(outcome.version),
            position: Some(outcome.position),
            joined: None,
        })
    }

    /// Reads the events appended to `id`'s stream after its cached state into the cache: for
    /// a stream found to have moved behind this repository's back (a prepared append refused
    /// for its version), so the next decision is not made on the same stale state.
    pub async fn catch_up(&self, id: &str) -> Result<(), CommandError<D::Error>> {
        let stream = self.stream(id)?;
        let cell = self.inner.cell(&stream);
        let mut slot = cell.slot.lock().await;
        if slot.loaded.is_some() {
            self.inner.reload(&stream, &mut slot).await?;
        }
        if !self.inner.store.is_shared() {
            cell.refresh(&slot);
        }
        Ok(())
    }
}

impl<D: Decider, S: EventStore> Inner<D, S>
where
    D::Error: std::error::Error + 'static,
{
    /// Appends a command's own events, with its companions' in the same commit if it has any:
    /// its own outcome, then each companion's in order.
    pub(super) async fn append_with(
        &self,
        own: StreamAppend,
        companions: Vec<StreamAppend>,
    ) -> Result<(AppendOutcome, Vec<AppendOutcome>), StoreError> {
        if companions.is_empty() {
            let StreamAppend { stream, expected, events } = own;
            return Ok((self.store.append(&stream, expected, events).await?, vec![]));
        }
        let parts = companions.len() + 1;
        let together = std::iter::once(own).chain(companions).collect();
        let mut outcomes = self.store.append_together(together).await?;
        if outcomes.len() != parts {
            let answered = outcomes.len();
            let reason =
                format!("an append of {parts} parts was answered with {answered} outcomes");
            return Err(StoreError::Storage(reason));
        }
        let own = outcomes.remove(0);
        Ok((own, outcomes))
    }
}

/// Whether `error` refused an append for a companion's sake: a version conflict on a stream
/// other than the command's own. Nothing was written; the companion's owner decides again.
pub(super) fn companion_moved(error: &StoreError, own: &StreamName) -> bool {
    matches!(error, StoreError::WrongExpectedVersion { stream, .. } if stream != own.as_str())
}

//! One command on its own: decide, append, and after a lost race read the new events and
//! decide again. This path also recognises a keyed request's retry whose first attempt
//! already took its step, so it is what a batch falls back to when an append of many
//! commands is refused for one of them.

use super::{
    backoff, companion_moved, derived_id, encode_all, Answer, CommandContext, CommandError, Inner,
    Receipt, Slot, LOAD_PAGE, MAX_ATTEMPTS, RETRY_WINDOW,
};
use crate::codec::DomainEvent;
use crate::error::StoreError;
use crate::model::{AppendOutcome, Direction, ExpectedVersion, StreamAppend, StreamName};
use crate::store::EventStore;
use ordo_domain::Decider;
use uuid::Uuid;

impl<D, S> Inner<D, S>
where
    D: Decider,
    D::Event: DomainEvent,
    D::Error: std::error::Error + 'static,
    S: EventStore,
{
    /// Runs `command` against the loaded state in `slot`, committing `companion` (another
    /// stream's events) with its events if it has any, or alone if it changes nothing.
    pub(super) async fn execute_one(
        &self,
        stream: &StreamName,
        slot: &mut Slot<D::State>,
        command: &D::Command,
        context: &CommandContext,
        companion: Option<&StreamAppend>,
    ) -> Answer<D> {
        let stream = stream.clone();
        // On a shared store an answer that appends nothing (a refusal, "already so") must not
        // come from a cached state another server has moved past: no append would catch it.
        let mut confirmed = !self.store.is_shared();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let loaded = self.loaded(&stream, slot).await?;
            let decided = D::decide(command, &loaded.state);
            if !confirmed && !matches!(&decided, Ok(events) if !events.is_empty()) {
                confirmed = true;
                let before = loaded.version;
                self.reload(&stream, slot).await?;
                if slot.loaded.as_ref().and_then(|l| l.version) != before {
                    continue;
                }
            }
            let loaded = self.loaded(&stream, slot).await?;
            let events = match decided {
                Ok(events) => events,
                // A keyed request whose first attempt took this step (its answer lost with its
                // server) finds the state moved on by its own events: not a refusal.
                Err(_) if loaded.took(context) => vec![],
                Err(refusal) => return Err(CommandError::Domain(refusal)),
            };
            if events.is_empty() {
                let version = loaded.version;
                let joined = self.append_alone(companion).await?;
                return Ok(Receipt { stream, events, version, position: None, joined });
            }
            let new_events = encode_all(&events, context)?;
            let ids: Vec<Uuid> = new_events.iter().map(|e| e.id).collect();
            if attempt == 0 && self.keyed_step_already_taken(&stream, context).await? {
                // A store that accepts a reused id at a new version (KurrentDB) would take this
                // retry's events a second time; the step is done, so append nothing.
                return self.already_taken(slot, stream).await;
            }
            let expected = ExpectedVersion::from_loaded(loaded.version);
            let own = StreamAppend { stream: stream.clone(), expected, events: new_events };
            let companions = companion.into_iter().cloned().collect();
            let appended = match self.append_with(own, companions).await {
                // The companion's stream moved: nothing was written; its owner decides.
                Err(moved) if companion_moved(&moved, &stream) => return Err(moved.into()),
                Ok((outcome, joined)) => Ok((outcome, joined.first().copied())),
                Err(other) => Err(other),
            };
            match appended {
                Ok((outcome, joined))
                    if outcome.first_version != loaded.version.map_or(0, |v| v + 1) =>
                {
                    // The store recognised the event ids and replayed an earlier append's outcome:
                    // those events are already in the stream, so read forward instead of folding
                    // them a second time.
                    self.reload(&stream, slot).await?;
                    return Ok(Receipt {
                        stream,
                        events,
                        version: Some(outcome.version),
                        position: Some(outcome.position),
                        joined,
                    });
                }
                Ok((outcome, joined)) => {
                    metrics::histogram!(super::CONFLICTS_METRIC).record(attempt as f64);
                    let state = std::mem::replace(&mut loaded.state, D::initial_state());
                    loaded.state = events.iter().fold(state, D::evolve);
                    loaded.version = Some(outcome.version);
                    loaded.remember(ids);
                    return Ok(Receipt {
                        stream,
                        events,
                        version: loaded.version,
                        position: Some(outcome.position),
                        joined,
                    });
                }
                Err(StoreError::WrongExpectedVersion { .. }) => self.reload(&stream, slot).await?,
                Err(StoreError::EventIdConflict { id, reason }) => {
                    // The first attempt of this keyed request already took this step, deciding
                    // at its own time (so its events differ in their timestamps). The step is
                    // done: answer with what the stream holds now, appending nothing.
                    let first_id = context.idempotency_key.map(|key| derived_id(key, 0));
                    if let Some(first) = first_id {
                        if self.holds_event(&stream, first).await? {
                            return self.already_taken(slot, stream).await;
                        }
                    }
                    return Err(StoreError::EventIdConflict { id, reason }.into());
                }
                Err(other) => {
                    // The append may or may not have landed: reload next time instead of guessing.
                    slot.loaded = None;
                    return Err(other.into());
                }
            }
        }
        Err(CommandError::Conflict { stream: stream.to_string(), attempts: MAX_ATTEMPTS })
    }

    /// The receipt of a keyed step an earlier attempt already took: nothing appended, the
    /// cached state brought up to what the stream holds (that attempt's events included).
    async fn already_taken(&self, slot: &mut Slot<D::State>, stream: StreamName) -> Answer<D> {
        self.reload(&stream, slot).await?;
        let version = slot.loaded.as_ref().and_then(|l| l.version);
        Ok(Receipt { stream, events: vec![], version, position: None, joined: None })
    }

    /// A companion of a command that changed nothing, appended on its own; `None` without one.
    pub(super) async fn append_alone(
        &self,
        companion: Option<&StreamAppend>,
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let Some(c) = companion else { return Ok(None) };
        Ok(Some(self.store.append(&c.stream, c.expected, c.events.clone()).await?))
    }

    /// On stores that do not refuse a reused event id themselves: whether the recent tail of
    /// the stream already holds this keyed step's first event (an earlier attempt of the same
    /// request). Elsewhere the store's own id check answers, at no extra read.
    async fn keyed_step_already_taken(
        &self,
        stream: &StreamName,
        context: &CommandContext,
    ) -> Result<bool, StoreError> {
        let Some(key) = context.idempotency_key else { return Ok(false) };
        if self.store.refuses_reused_event_ids() {
            return Ok(false);
        }
        let first = derived_id(key, 0);
        let tail =
            self.store.read_stream(stream, u64::MAX, Direction::Backward, RETRY_WINDOW).await?;
        Ok(tail.iter().any(|e| e.id == first))
    }

    /// Whether the stream holds event `id`: the mark of an earlier attempt. Reads the whole
    /// stream, but only on the rare retry of a request that crashed half-way.
    async fn holds_event(&self, stream: &StreamName, id: Uuid) -> Result<bool, StoreError> {
        let mut from = 0;
        loop {
            let page = self.store.read_stream(stream, from, Direction::Forward, LOAD_PAGE).await?;
            if page.iter().any(|e| e.id == id) {
                return Ok(true);
            }
            match page.last() {
                Some(last) if page.len() == LOAD_PAGE => from = last.version + 1,
                _ => return Ok(false),
            }
        }
    }
}

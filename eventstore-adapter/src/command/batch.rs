//! The task that decides one stream's queued commands, many per commit (ADR 0014).
//!
//! While a stream's commit is in flight, the commands that arrive for it queue up. When it
//! lands, the task takes the whole queue and decides it in arrival order against the
//! in-memory state: each command sees the events of those before it, a refused command
//! refuses only itself (its events are simply not there), and one append with the version the
//! batch started from commits them all. Each caller then hears its own receipt. The store's
//! group commit already shares one fsync between streams; this shares it between the commands
//! of one stream, which is what a flash sale on one product needs.
//!
//! Commands carrying another stream's events (a cart line with its hold) bring them into the
//! same commit, except those of refused commands; if one of those streams moved, the batch
//! goes one by one and only that command is refused.
//!
//! A lost version race (another server wrote) reloads and decides the whole batch again. An
//! append refused for one command's sake (a reused event id, too large) is not guessed at:
//! the commands then go one by one through [`super::single`], which knows those cases.

use super::{
    backoff, companion_moved, encode_all, Answer, Cell, CommandError, Inner, Pending, Receipt,
    Slot, MAX_ATTEMPTS,
};
use crate::codec::DomainEvent;
use crate::error::StoreError;
use crate::model::{ExpectedVersion, Position, StreamAppend, StreamName};
use crate::store::EventStore;
use ordo_domain::Decider;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Most commands decided and appended together.
pub const MAX_BATCH: usize = 256;

/// What one command of a batch came to before the append.
enum Decided<D: Decider> {
    Refused(D::Error),
    Nothing,
    Appends(Vec<D::Event>),
}

/// How a batch ended.
enum Outcome<D: Decider>
where
    D::Error: std::error::Error + 'static,
{
    /// Every command has its answer, in order.
    Answered(Vec<Answer<D>>),
    /// Let each command run on its own.
    OneByOne,
}

impl<D, S> Inner<D, S>
where
    D: Decider + 'static,
    D::State: Clone + Send + Sync + 'static,
    D::Event: DomainEvent + Send + Sync + 'static,
    D::Command: Send + Sync + 'static,
    D::Error: std::error::Error + Send + 'static,
    S: EventStore,
{
    /// Decides `cell`'s queue until it is empty, then hands the queue back to the next
    /// command's caller.
    pub(super) async fn drain(self: Arc<Self>, stream: StreamName, cell: Arc<Cell<D>>) {
        loop {
            let mut slot = cell.slot.lock().await;
            let batch: Vec<Pending<D>> = {
                let mut queue = cell.queue.lock().unwrap_or_else(|p| p.into_inner());
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            if batch.is_empty() {
                cell.draining.store(false, Ordering::Release);
                // A command queued between the look above and the flag falling found the flag
                // still up and started no task: look once more, and keep going if so.
                let queued = !cell.queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
                if !queued || cell.draining.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            }
            let answers = self.decide_queued(&stream, &mut slot, &batch).await;
            // Readers see the new state before any caller hears of it.
            if !self.store.is_shared() {
                cell.refresh(&slot);
            }
            for (pending, answer) in batch.into_iter().zip(answers) {
                let _ = pending.reply.send(answer);
            }
        }
    }

    /// Every queued command's answer, in order.
    async fn decide_queued(
        &self,
        stream: &StreamName,
        slot: &mut Slot<D::State>,
        batch: &[Pending<D>],
    ) -> Vec<Answer<D>> {
        if let Err(error) = self.loaded(stream, slot).await {
            let message = error.to_string();
            return batch.iter().map(|_| Err(failed(&message))).collect();
        }
        // Stores that take a reused event id as new (KurrentDB) need each keyed command looked
        // up on its own before it appends; commands without a key batch there too.
        let keyed = batch.iter().any(|p| p.context.idempotency_key.is_some());
        let together = batch.len() > 1 && (self.store.refuses_reused_event_ids() || !keyed);
        if together {
            if let Outcome::Answered(answers) = self.decide_together(stream, slot, batch).await {
                return answers;
            }
        }
        let mut answers = Vec::with_capacity(batch.len());
        for pending in batch {
            let (command, context) = (&pending.command, &pending.context);
            let companion = pending.companion.as_ref();
            answers.push(self.execute_one(stream, slot, command, context, companion).await);
        }
        answers
    }

    async fn decide_together(
        &self,
        stream: &StreamName,
        slot: &mut Slot<D::State>,
        batch: &[Pending<D>],
    ) -> Outcome<D> {
        // As on its own: on a shared store, answers that append nothing are confirmed on the
        // stream's current state before they are given.
        let mut confirmed = !self.store.is_shared();
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let Some(loaded) = slot.loaded.as_ref() else { return Outcome::OneByOne };
            // Copies: nothing borrowed from the cache may be held across the append.
            let (version, mut state) = (loaded.version, loaded.state.clone());
            let mut recent = super::Loaded { version, state: (), recent: loaded.recent.clone() };
            let mut decided: Vec<Decided<D>> = Vec::with_capacity(batch.len());
            let mut new_events = Vec::new();
            let mut ids = Vec::new();
            for pending in batch {
                match D::decide(&pending.command, &state) {
                    // A keyed retry of a step already taken: answered, as on its own.
                    Err(_) if recent.took(&pending.context) => decided.push(Decided::Nothing),
                    Err(refusal) => decided.push(Decided::Refused(refusal)),
                    Ok(events) if events.is_empty() => decided.push(Decided::Nothing),
                    Ok(events) => {
                        match encode_all::<D::Event, D::Error>(&events, &pending.context) {
                            Ok(encoded) => {
                                ids.extend(encoded.iter().map(|e| e.id));
                                new_events.extend(encoded);
                            }
                            Err(_) => return Outcome::OneByOne,
                        }
                        state = events.iter().fold(state, D::evolve);
                        decided.push(Decided::Appends(events));
                    }
                }
            }
            let appends_nothing = decided.iter().any(|d| !matches!(d, Decided::Appends(_)));
            if !confirmed && appends_nothing {
                confirmed = true;
                if self.reload(stream, slot).await.is_err() {
                    slot.loaded = None;
                    return Outcome::OneByOne;
                }
                if slot.loaded.as_ref().and_then(|l| l.version) != version {
                    continue;
                }
            }
            // The companions of the commands not refused ride in the same commit.
            let (riders, companions): (Vec<usize>, Vec<StreamAppend>) = batch
                .iter()
                .zip(&decided)
                .enumerate()
                .filter(|(_, (_, d))| !matches!(d, Decided::Refused(_)))
                .filter_map(|(i, (p, _))| Some((i, p.companion.clone()?)))
                .unzip();
            if new_events.is_empty() {
                if !companions.is_empty() {
                    // Rare (commands that change nothing, carrying other streams' events):
                    // each on its own.
                    return Outcome::OneByOne;
                }
                return Outcome::Answered(answers(stream, decided, version, None, false));
            }
            let expected = ExpectedVersion::from_loaded(version);
            let own = StreamAppend { stream: stream.clone(), expected, events: new_events };
            let appended = match self.append_with(own, companions).await {
                // A companion's stream moved: only its command is refused, on its own.
                Err(moved) if companion_moved(&moved, stream) => return Outcome::OneByOne,
                Ok((outcome, joined)) => Ok((outcome, riders.into_iter().zip(joined))),
                Err(other) => Err(other),
            };
            match appended {
                Ok((outcome, joined)) if outcome.first_version == version.map_or(0, |v| v + 1) => {
                    recent.remember(ids);
                    let recent = recent.recent;
                    slot.loaded =
                        Some(super::Loaded { version: Some(outcome.version), state, recent });
                    let conflicts = metrics::histogram!(super::CONFLICTS_METRIC);
                    for _ in 0..batch.len() {
                        conflicts.record(attempt as f64);
                    }
                    let counted = self.store.positions_count_events();
                    let end = Some((outcome.version, outcome.position));
                    let mut answered = answers(stream, decided, version, end, counted);
                    for (i, outcome) in joined {
                        if let Ok(receipt) = &mut answered[i] {
                            receipt.joined = Some(outcome);
                        }
                    }
                    return Outcome::Answered(answered);
                }
                Err(StoreError::WrongExpectedVersion { .. }) => {
                    if self.reload(stream, slot).await.is_err() {
                        slot.loaded = None;
                        return Outcome::OneByOne;
                    }
                }
                // Replayed (the batch's events were already there): read on from the cache,
                // then settle each command on its own.
                Ok(_) => {
                    if self.reload(stream, slot).await.is_err() {
                        slot.loaded = None;
                    }
                    return Outcome::OneByOne;
                }
                // A reused id, too large, two companions for one stream: refused before anything
                // was written, so the cache stands (dropping it made the next decision read the
                // whole stream, 40,000 events on a product a crowd was holding); one command's
                // business, settled on its own.
                Err(
                    StoreError::EventIdConflict { .. }
                    | StoreError::AppendTooLarge { .. }
                    | StoreError::StreamTwice(_),
                ) => return Outcome::OneByOne,
                Err(other) => {
                    // It may or may not have landed: reload next time instead of guessing.
                    slot.loaded = None;
                    let copy = |_| Err(copy_error(&other));
                    return Outcome::Answered(batch.iter().map(copy).collect());
                }
            }
        }
        let conflict =
            |_| Err(CommandError::Conflict { stream: stream.to_string(), attempts: MAX_ATTEMPTS });
        Outcome::Answered(batch.iter().map(conflict).collect())
    }
}

/// Each command's receipt: its own last version and position within the commit that ended at
/// `end` (version, position). Where positions do not count events, every receipt carries the
/// commit's last position, which is at or after all of its events, as a receipt promises.
fn answers<D: Decider>(
    stream: &StreamName,
    decided: Vec<Decided<D>>,
    start: Option<u64>,
    end: Option<(u64, Position)>,
    positions_count_events: bool,
) -> Vec<Answer<D>>
where
    D::Error: std::error::Error + 'static,
{
    let total: u64 = decided
        .iter()
        .map(|d| match d {
            Decided::Appends(events) => events.len() as u64,
            _ => 0,
        })
        .sum();
    let mut before = 0u64;
    decided
        .into_iter()
        .map(|d| match d {
            Decided::Refused(refusal) => Err(CommandError::Domain(refusal)),
            Decided::Nothing => Ok(Receipt {
                stream: stream.clone(),
                events: vec![],
                version: start.map(|v| v + before).or_else(|| before.checked_sub(1)),
                position: None,
                joined: None,
            }),
            Decided::Appends(events) => {
                before += events.len() as u64;
                let (last_version, last_position) = end.unwrap_or((0, Position(0)));
                let after = total - before;
                let position = match positions_count_events {
                    true => Position(last_position.0 - after),
                    false => last_position,
                };
                Ok(Receipt {
                    stream: stream.clone(),
                    events,
                    version: Some(last_version - after),
                    position: Some(position),
                    joined: None,
                })
            }
        })
        .collect()
}

/// The error every command of a failed commit hears: the store's kind where it can be told
/// apart, else a storage failure with the same message.
fn copy_error<X: std::error::Error + 'static>(error: &StoreError) -> CommandError<X> {
    let copy = match error {
        StoreError::Closed => StoreError::Closed,
        StoreError::ReadOnly => StoreError::ReadOnly,
        StoreError::Fenced { role, epoch } => {
            StoreError::Fenced { role: role.clone(), epoch: *epoch }
        }
        other => StoreError::Storage(other.to_string()),
    };
    CommandError::Store(copy)
}

fn failed<X: std::error::Error + 'static>(message: &str) -> CommandError<X> {
    CommandError::Store(StoreError::Storage(message.to_owned()))
}

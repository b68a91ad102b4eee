//! A stream's place in its repository: the cached state (`Slot`), the state readers see as of
//! the last commit (`Committed`), and the queue of commands waiting to be decided on it.

use super::{derived_id, Answer, CommandContext};
use crate::model::StreamAppend;
use ordo_domain::Decider;
use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The cached aggregate of one stream, held by whoever decides on it.
pub(super) struct Slot<S> {
    /// `None` until loaded from the store.
    pub(super) loaded: Option<Loaded<S>>,
}

/// A stream's state at a version, and the ids of its last events.
pub(super) struct Loaded<S> {
    pub(super) version: Option<u64>,
    pub(super) state: S,
    /// Ids of the stream's last events (up to [`RETRY_WINDOW`]): what tells a keyed request's
    /// retry whose step was already taken (its answer lost with its server) from a new
    /// request that the state refuses, without reading the stream again.
    pub(super) recent: VecDeque<Uuid>,
}

impl<S> Loaded<S> {
    pub(super) fn remember(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        for id in ids {
            if self.recent.len() == RETRY_WINDOW {
                self.recent.pop_front();
            }
            self.recent.push_back(id);
        }
    }

    /// Whether the keyed step `context` names is among the stream's last events.
    pub(super) fn took(&self, context: &CommandContext) -> bool {
        context.idempotency_key.is_some_and(|key| self.recent.contains(&derived_id(key, 0)))
    }
}

/// A stream's state as of its last commit, as readers see it while the next one is in flight.
pub(super) struct Committed<S> {
    pub(super) version: Option<u64>,
    pub(super) state: S,
}

/// A command waiting in its stream's queue.
pub(super) struct Pending<D: Decider>
where
    D::Error: std::error::Error + 'static,
{
    pub(super) command: D::Command,
    pub(super) context: CommandContext,
    /// Another stream's events to commit with this command's, or not at all.
    pub(super) companion: Option<StreamAppend>,
    pub(super) reply: oneshot::Sender<Answer<D>>,
}

/// One stream: its cached state, and the commands waiting to be decided on it.
pub(super) struct Cell<D: Decider>
where
    D::Error: std::error::Error + 'static,
{
    pub(super) slot: tokio::sync::Mutex<Slot<D::State>>,
    /// The slot's state as of its holder's last commit, for [`Repository::inspect`] on a store
    /// this process alone writes. Published by the first such read (under the lock), then kept
    /// current by whoever holds `slot`, before any caller hears of a commit, so nobody reads a
    /// state older than a receipt they were given.
    pub(super) committed: Mutex<Option<Arc<Committed<D::State>>>>,
    pub(super) queue: Mutex<VecDeque<Pending<D>>>,
    /// Whether a task is deciding the queue.
    pub(super) draining: AtomicBool,
}

impl<D: Decider> Cell<D>
where
    D::State: Clone,
    D::Error: std::error::Error + 'static,
{
    /// The state as of the last published commit (`None`: none published, or the cached state
    /// was dropped because an append's outcome is unknown).
    pub(super) fn committed(&self) -> Option<Arc<Committed<D::State>>> {
        self.committed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Publishes the state held in `slot` for readers (its holder calls this): copied only
    /// when its version moved.
    pub(super) fn publish(&self, slot: &Slot<D::State>) {
        self.published(slot, true);
    }

    /// Keeps a published state current after a commit (its holder calls this). A stream
    /// nobody has read this way (a payment, an order no one has acted on) is not copied.
    pub(super) fn refresh(&self, slot: &Slot<D::State>) {
        self.published(slot, false);
    }

    pub(super) fn published(&self, slot: &Slot<D::State>, create: bool) {
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        match (&slot.loaded, committed.as_ref()) {
            (None, _) => *committed = None,
            (Some(_), None) if !create => {}
            (Some(loaded), Some(c)) if c.version == loaded.version => {}
            (Some(loaded), _) => {
                let (version, state) = (loaded.version, loaded.state.clone());
                *committed = Some(Arc::new(Committed { version, state }));
            }
        }
    }
}

/// How far back (in events) a store without its own id check is searched for an earlier
/// attempt of a keyed step: retries come within seconds, when the step is near the end.
pub(super) const RETRY_WINDOW: usize = 256;

//! The write path: load an aggregate, `decide`, append with optimistic concurrency.
//!
//! Each [`Repository`] serves one aggregate type. Commands for the same stream are serialized
//! in process by a per-stream async lock, so a hot SKU in a flash sale queues its commands
//! instead of spinning on version conflicts. Recent states stay in a bounded LRU cache with
//! their version: a command decides on the cached aggregate; if another process wrote in the
//! meantime, the append fails its version check, the repository reads only the new events,
//! and decides again (a bounded number of times). A state read for another aggregate's
//! decision ([`Repository::inspect`]) is brought up to date first on a shared store, since no
//! append of its own would catch it being behind. See `docs/adr/0005-aggregate-cache-instead-of-snapshots.md`.

use crate::codec::{CodecError, DomainEvent};
use crate::error::StoreError;
use crate::model::{Direction, EventMetadata, ExpectedVersion, Position, StreamName};
use crate::store::EventStore;
use lru::LruCache;
use ordo_domain::Decider;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

/// How often a command is decided again after losing a version race to another process.
pub const MAX_ATTEMPTS: usize = 10;
/// First pause after a lost race; doubles per attempt (with jitter) so that writers in
/// different processes stop colliding instead of retrying in lockstep.
const FIRST_BACKOFF: Duration = Duration::from_micros(250);
/// Events read per page while loading a stream.
const LOAD_PAGE: usize = 1_024;

/// Who is asking and why, carried into every event's metadata.
#[derive(Clone, Debug, Default)]
pub struct CommandContext {
    /// The request or process run.
    pub correlation_id: Option<Uuid>,
    /// The message that caused this command (for processes: the triggering event's id).
    pub causation_id: Option<Uuid>,
    /// Makes event ids deterministic: the same key gives the same ids, so the store turns a
    /// re-sent command into a no-op. Processes derive it from the triggering event.
    pub idempotency_key: Option<Uuid>,
    /// Extra headers (actor, client).
    pub headers: BTreeMap<String, String>,
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt<E> {
    /// The aggregate's stream.
    pub stream: StreamName,
    /// Events appended; empty when the command was already satisfied.
    pub events: Vec<E>,
    /// Stream version after the command (`None`: the stream still has no events).
    pub version: Option<u64>,
    /// Global position of the last appended event; `None` if nothing was appended.
    pub position: Option<Position>,
}

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// A business rule refused it.
    #[error(transparent)]
    Domain(E),
    /// Lost the version race [`MAX_ATTEMPTS`] times in a row to writers in other processes.
    #[error("{stream} kept changing concurrently; gave up after {attempts} attempts")]
    Conflict {
        /// The contended stream.
        stream: String,
        /// Attempts made.
        attempts: usize,
    },
    /// The stream or id is malformed, or the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event no longer decodes.
    #[error(transparent)]
    Codec(#[from] CodecError),
}

struct Slot<S> {
    /// `None` until loaded from the store.
    loaded: Option<Loaded<S>>,
}

struct Loaded<S> {
    version: Option<u64>,
    state: S,
}

type SlotRef<S> = Arc<tokio::sync::Mutex<Slot<S>>>;

/// Command handling for the aggregate `D` on store `S`.
pub struct Repository<D: Decider, S> {
    store: Arc<S>,
    slots: Mutex<LruCache<StreamName, SlotRef<D::State>>>,
    _decider: PhantomData<fn() -> D>,
}

impl<D, S> Repository<D, S>
where
    D: Decider,
    D::State: Send + 'static,
    D::Event: DomainEvent + Send + Sync,
    D::Command: Sync,
    D::Error: std::error::Error + Send + 'static,
    S: EventStore,
{
    /// A repository keeping up to `cache_capacity` aggregates in memory.
    pub fn new(store: Arc<S>, cache_capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(cache_capacity).unwrap_or(NonZeroUsize::MIN);
        Self { store, slots: Mutex::new(LruCache::new(capacity)), _decider: PhantomData }
    }

    /// The stream of the aggregate with this id.
    pub fn stream(&self, id: &str) -> Result<StreamName, StoreError> {
        StreamName::for_aggregate(D::CATEGORY, id)
    }

    fn slot(&self, stream: &StreamName) -> SlotRef<D::State> {
        let mut slots = self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        slots
            .get_or_insert(stream.clone(), || {
                Arc::new(tokio::sync::Mutex::new(Slot { loaded: None }))
            })
            .clone()
    }

    /// Runs `command` against the aggregate `id`.
    pub async fn execute(
        &self,
        id: &str,
        command: &D::Command,
        context: &CommandContext,
    ) -> Result<Receipt<D::Event>, CommandError<D::Error>> {
        let stream = self.stream(id)?;
        let slot = self.slot(&stream);
        let mut slot = slot.lock().await;
        if slot.loaded.is_none() {
            slot.loaded = Some(self.load(&stream, None, D::initial_state()).await?);
        }
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let loaded = slot.loaded.as_mut().ok_or(StoreError::Closed)?;
            let events = D::decide(command, &loaded.state).map_err(CommandError::Domain)?;
            if events.is_empty() {
                return Ok(Receipt { stream, events, version: loaded.version, position: None });
            }
            let new_events = encode_all(&events, context)?;
            if attempt == 0 && self.keyed_step_already_taken(&stream, context).await? {
                // A store that accepts a reused id at a new version (KurrentDB) would take this
                // retry's events a second time; the step is done, so append nothing.
                return self.already_taken(&mut slot, stream).await;
            }
            let expected = ExpectedVersion::from_loaded(loaded.version);
            match self.store.append(&stream, expected, new_events).await {
                Ok(outcome) if outcome.first_version != loaded.version.map_or(0, |v| v + 1) => {
                    // The store recognised the event ids and replayed an earlier append's outcome:
                    // those events are already in the stream, so read forward instead of folding
                    // them a second time.
                    let Loaded { version, state } = slot.loaded.take().ok_or(StoreError::Closed)?;
                    slot.loaded = Some(self.load(&stream, version, state).await?);
                    return Ok(Receipt {
                        stream,
                        events,
                        version: Some(outcome.version),
                        position: Some(outcome.position),
                    });
                }
                Ok(outcome) => {
                    let state = std::mem::replace(&mut loaded.state, D::initial_state());
                    loaded.state = events.iter().fold(state, D::evolve);
                    loaded.version = Some(outcome.version);
                    return Ok(Receipt {
                        stream,
                        events,
                        version: loaded.version,
                        position: Some(outcome.position),
                    });
                }
                Err(StoreError::WrongExpectedVersion { .. }) => {
                    let Loaded { version, state } = slot.loaded.take().ok_or(StoreError::Closed)?;
                    slot.loaded = Some(self.load(&stream, version, state).await?);
                }
                Err(StoreError::EventIdConflict { id, reason }) => {
                    // The first attempt of this keyed request already took this step, deciding
                    // at its own time (so its events differ in their timestamps). The step is
                    // done: answer with what the stream holds now, appending nothing.
                    let first_id = context.idempotency_key.map(|key| derived_id(key, 0));
                    if let Some(first) = first_id {
                        if self.holds_event(&stream, first).await? {
                            return self.already_taken(&mut slot, stream).await;
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

    /// The receipt of a use case that appended nothing to `id`'s stream: its current version.
    pub async fn unchanged(&self, id: &str) -> Result<Receipt<D::Event>, CommandError<D::Error>> {
        let version = self.inspect(id, |version, _| version).await?;
        Ok(Receipt { stream: self.stream(id)?, events: vec![], version, position: None })
    }

    /// Reads the aggregate's current state and maps it with `f`. The cached state is used as
    /// is when this process is the store's only writer; on a shared store the events appended
    /// after it (by other servers) are read first, so nothing decides on a state another
    /// server has moved past (a cart line priced from a product repriced elsewhere).
    pub async fn inspect<R>(
        &self,
        id: &str,
        f: impl FnOnce(Option<u64>, &D::State) -> R,
    ) -> Result<R, CommandError<D::Error>> {
        let stream = self.stream(id)?;
        let slot = self.slot(&stream);
        let mut slot = slot.lock().await;
        match slot.loaded.take() {
            None => slot.loaded = Some(self.load(&stream, None, D::initial_state()).await?),
            Some(Loaded { version, state }) if self.store.is_shared() => {
                slot.loaded = Some(self.load(&stream, version, state).await?);
            }
            cached => slot.loaded = cached,
        }
        let loaded = slot.loaded.as_ref().ok_or(StoreError::Closed)?;
        Ok(f(loaded.version, &loaded.state))
    }

    /// The receipt of a keyed step an earlier attempt already took: nothing appended, the
    /// cached state brought up to what the stream holds (that attempt's events included).
    async fn already_taken(
        &self,
        slot: &mut Slot<D::State>,
        stream: StreamName,
    ) -> Result<Receipt<D::Event>, CommandError<D::Error>> {
        let Loaded { version, state } = slot.loaded.take().ok_or(StoreError::Closed)?;
        let loaded = self.load(&stream, version, state).await?;
        let version = loaded.version;
        slot.loaded = Some(loaded);
        Ok(Receipt { stream, events: vec![], version, position: None })
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

    /// Folds the stream's events after `version` into `state`.
    async fn load(
        &self,
        stream: &StreamName,
        mut version: Option<u64>,
        mut state: D::State,
    ) -> Result<Loaded<D::State>, CommandError<D::Error>> {
        loop {
            let from = version.map_or(0, |v| v + 1);
            let page = self.store.read_stream(stream, from, Direction::Forward, LOAD_PAGE).await?;
            for recorded in &page {
                let event = D::Event::from_recorded(recorded)?;
                state = D::evolve(state, &event);
                version = Some(recorded.version);
            }
            if page.len() < LOAD_PAGE {
                return Ok(Loaded { version, state });
            }
        }
    }
}

fn encode_all<E: DomainEvent, X: std::error::Error + 'static>(
    events: &[E],
    context: &CommandContext,
) -> Result<Vec<crate::model::NewEvent>, CommandError<X>> {
    let metadata = EventMetadata {
        correlation_id: context.correlation_id,
        causation_id: context.causation_id,
        headers: context.headers.clone(),
    };
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let id = match context.idempotency_key {
                Some(key) => derived_id(key, i),
                None => Uuid::now_v7(),
            };
            Ok(event.encode()?.into_new_event(id, metadata.clone()))
        })
        .collect()
}

/// Pause before retry `attempt` (1-based): exponential, capped at ~64 ms, with full jitter.
fn backoff(attempt: usize) -> Duration {
    let ceiling = FIRST_BACKOFF * (1u32 << attempt.min(8));
    // The random bits of a v7 UUID are a ready source of jitter; nothing here needs crypto.
    let random = (Uuid::now_v7().as_u128() & 0xffff_ffff) as u32;
    ceiling.mul_f64(f64::from(random) / f64::from(u32::MAX))
}

/// How far back (in events) a store without its own id check is searched for an earlier
/// attempt of a keyed step: retries come within seconds, when the step is near the end.
const RETRY_WINDOW: usize = 256;

/// A deterministic event id: the `index`-th event caused by `key`.
pub fn derived_id(key: Uuid, index: usize) -> Uuid {
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update((index as u64).to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

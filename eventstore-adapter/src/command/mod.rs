//! The write path: load an aggregate, `decide`, append with optimistic concurrency.
//!
//! Each [`Repository`] serves one aggregate type. Commands for the same stream queue up in
//! process, and one task at a time decides them (`batch`): everything queued for a stream is
//! decided one command after another against the in-memory state and appended in one commit,
//! so a hot SKU in a flash sale keeps its stream busy instead of waiting out one commit per
//! command (ADR 0014). Each command is still all or nothing, a refused command refuses only
//! itself, and each caller is answered after the commit that holds its events.
//!
//! Recent states stay in a bounded LRU cache with their version: a command decides on the
//! cached aggregate; if another process wrote in the meantime, the append fails its version
//! check, the repository reads only the new events, and decides again (a bounded number of
//! times). A state read for another aggregate's decision ([`Repository::inspect`]) is brought up
//! to date first on a shared store, since no append of its own would catch it being behind.
//! On a store this process alone writes, it reads the state as of the stream's last commit
//! without waiting for a commit in flight: a thousand shoppers looking at a hot product before
//! reserving it do not queue behind its fsyncs.
//! See `docs/adr/0005-aggregate-cache-instead-of-snapshots.md`.
//!
//! A command may carry another stream's events into its commit ([`Repository::execute_joined`],
//! events decided by [`Repository::prepare`]): both land or neither, on stores that append to
//! several streams at once. That is how a cart line and its hold on the product commit together
//! (ADR 0022).
//!
//! - this file: the types, the cache, and how a command joins its stream's queue;
//! - `cell`: one stream's cached state, its state as of the last commit, and its queue;
//! - `batch`: the task that decides a stream's queue, many commands per commit;
//! - `single`: one command on its own, with the recognition of a retried keyed request;
//! - `joined`: a command carrying another stream's prepared events into its commit.

mod batch;
mod cell;
mod joined;
mod single;

use cell::{Cell, Loaded, Pending, Slot, RETRY_WINDOW};
use joined::companion_moved;
pub use joined::Prepared;

use crate::codec::{CodecError, DomainEvent};
use crate::error::StoreError;
use crate::model::{AppendOutcome, Direction, EventMetadata, Position, StreamAppend, StreamName};
use crate::store::EventStore;
use lru::LruCache;
use ordo_domain::Decider;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

/// How often a command is decided again after losing a version race to another process.
pub const MAX_ATTEMPTS: usize = 10;
/// First pause after a lost race; doubles per attempt (with jitter) so that writers in
/// different processes stop colliding instead of retrying in lockstep.
const FIRST_BACKOFF: Duration = Duration::from_micros(250);
/// Histogram of version races a command lost before it committed (0: none): how much
/// writers in different processes contend for the same streams.
pub const CONFLICTS_METRIC: &str = "ordo_command_conflicts";
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
    /// Where the events of another stream that rode with this command landed
    /// ([`Repository::execute_joined`]); `None` for a command without them, or when an
    /// earlier attempt of the same keyed request had already appended them.
    pub joined: Option<AppendOutcome>,
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

/// What a command's caller hears back.
type Answer<D> = Result<Receipt<<D as Decider>::Event>, CommandError<<D as Decider>::Error>>;

/// What a repository's tasks share.
struct Inner<D: Decider, S>
where
    D::Error: std::error::Error + 'static,
{
    store: Arc<S>,
    cells: Mutex<LruCache<StreamName, Arc<Cell<D>>>>,
}

/// Command handling for the aggregate `D` on store `S`.
pub struct Repository<D: Decider, S>
where
    D::Error: std::error::Error + 'static,
{
    inner: Arc<Inner<D, S>>,
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
    /// A repository keeping up to `cache_capacity` aggregates in memory.
    pub fn new(store: Arc<S>, cache_capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(cache_capacity).unwrap_or(NonZeroUsize::MIN);
        Self { inner: Arc::new(Inner { store, cells: Mutex::new(LruCache::new(capacity)) }) }
    }

    /// The stream of the aggregate with this id.
    pub fn stream(&self, id: &str) -> Result<StreamName, StoreError> {
        StreamName::for_aggregate(D::CATEGORY, id)
    }

    /// Runs `command` against the aggregate `id`: it joins the stream's queue and is answered
    /// once decided and, if it changed anything, committed. A caller that stops waiting does
    /// not take its command back: like a request whose response was lost, it may still apply
    /// (a retry with the same idempotency key is then a no-op).
    pub async fn execute(
        &self,
        id: &str,
        command: &D::Command,
        context: &CommandContext,
    ) -> Answer<D> {
        self.submit(id, command, context, None).await
    }

    /// Joins the stream's queue and waits for the answer.
    async fn submit(
        &self,
        id: &str,
        command: &D::Command,
        context: &CommandContext,
        companion: Option<StreamAppend>,
    ) -> Answer<D> {
        let stream = self.stream(id)?;
        let cell = self.inner.cell(&stream);
        let (reply, answer) = oneshot::channel();
        let pending =
            Pending { command: command.clone(), context: context.clone(), companion, reply };
        cell.queue.lock().unwrap_or_else(|p| p.into_inner()).push_back(pending);
        if !cell.draining.swap(true, Ordering::AcqRel) {
            tokio::spawn(self.inner.clone().drain(stream, cell));
        }
        // The deciding task answers every command it takes; it only drops one by panicking.
        answer.await.unwrap_or(Err(CommandError::Store(StoreError::Closed)))
    }

    /// The receipt of a use case that appended nothing to `id`'s stream: its current version.
    pub async fn unchanged(&self, id: &str) -> Answer<D> {
        let version = self.inspect(id, |version, _| version).await?;
        let stream = self.stream(id)?;
        Ok(Receipt { stream, events: vec![], version, position: None, joined: None })
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
        let cell = self.inner.cell(&stream);
        let alone = !self.inner.store.is_shared();
        if alone {
            if let Some(committed) = cell.committed() {
                return Ok(f(committed.version, &committed.state));
            }
        }
        let mut slot = cell.slot.lock().await;
        self.inner.current(&stream, &mut slot).await?;
        if alone {
            cell.publish(&slot);
        }
        let loaded = slot.loaded.as_ref().ok_or(StoreError::Closed)?;
        Ok(f(loaded.version, &loaded.state))
    }

    /// Whether the keyed step `context` names is among the last events of `id`'s stream: an
    /// earlier attempt of the same request took it (false without a key). For use cases that
    /// refuse before any command runs, to tell a retry whose answer was lost from a new
    /// request.
    pub async fn took_step(
        &self,
        id: &str,
        context: &CommandContext,
    ) -> Result<bool, CommandError<D::Error>> {
        let stream = self.stream(id)?;
        let cell = self.inner.cell(&stream);
        let mut slot = cell.slot.lock().await;
        Ok(self.inner.current(&stream, &mut slot).await?.took(context))
    }
}

impl<D, S> Inner<D, S>
where
    D: Decider,
    D::Event: DomainEvent,
    D::Error: std::error::Error + 'static,
    S: EventStore,
{
    fn cell(&self, stream: &StreamName) -> Arc<Cell<D>> {
        let mut cells = self.cells.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cells
            .get_or_insert(stream.clone(), || {
                Arc::new(Cell {
                    slot: tokio::sync::Mutex::new(Slot { loaded: None }),
                    committed: Mutex::new(None),
                    queue: Mutex::new(VecDeque::new()),
                    draining: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Folds the stream's events after `from` (a cached state; `None`: the start) into it.
    async fn load(
        &self,
        stream: &StreamName,
        from: Option<Loaded<D::State>>,
    ) -> Result<Loaded<D::State>, CommandError<D::Error>> {
        let mut loaded = from.unwrap_or_else(|| Loaded {
            version: None,
            state: D::initial_state(),
            recent: VecDeque::new(),
        });
        loop {
            let from = loaded.version.map_or(0, |v| v + 1);
            let page = self.store.read_stream(stream, from, Direction::Forward, LOAD_PAGE).await?;
            for recorded in &page {
                let event = D::Event::from_recorded(recorded)?;
                let state = std::mem::replace(&mut loaded.state, D::initial_state());
                loaded.state = D::evolve(state, &event);
                loaded.version = Some(recorded.version);
            }
            loaded.remember(page.iter().map(|e| e.id));
            if page.len() < LOAD_PAGE {
                return Ok(loaded);
            }
        }
    }

    /// Brings the cached state up to what the stream holds (after a lost race, or an append
    /// whose outcome says the events were already there).
    async fn reload(
        &self,
        stream: &StreamName,
        slot: &mut Slot<D::State>,
    ) -> Result<(), CommandError<D::Error>> {
        // No cached state (dropped after a commit whose outcome could not be told): all of it.
        let cached = slot.loaded.take();
        slot.loaded = Some(self.load(stream, cached).await?);
        Ok(())
    }

    /// The cached state to decide on, loaded first if it was dropped: a commit whose outcome
    /// could not be told, or a reload that failed, drops it so that the next decision reads
    /// the stream ("reload next time"). Reading a dropped cache as an error once answered
    /// every command of a batch, one by one, that the store had closed: a 503 "shutting down"
    /// for each (a batch's commit refused as a whole dropped its cache then).
    async fn loaded<'s>(
        &self,
        stream: &StreamName,
        slot: &'s mut Slot<D::State>,
    ) -> Result<&'s mut Loaded<D::State>, CommandError<D::Error>> {
        let loaded = match slot.loaded.take() {
            Some(cached) => cached,
            None => self.load(stream, None).await?,
        };
        Ok(slot.loaded.insert(loaded))
    }

    /// The state to read: cached as is when this process is the store's only writer, brought
    /// up to date first on a shared store, loaded if not cached.
    async fn current<'s>(
        &self,
        stream: &StreamName,
        slot: &'s mut Slot<D::State>,
    ) -> Result<&'s Loaded<D::State>, CommandError<D::Error>> {
        match slot.loaded.take() {
            None => slot.loaded = Some(self.load(stream, None).await?),
            Some(cached) if self.store.is_shared() => {
                slot.loaded = Some(self.load(stream, Some(cached)).await?);
            }
            cached => slot.loaded = cached,
        }
        Ok(slot.loaded.as_ref().ok_or(StoreError::Closed)?)
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

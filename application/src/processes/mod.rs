//! The shop's processes: what happens after a request returns.
//!
//! The checkout process is a handler of the shared log follower ([`ordo_eventstore::follow`]):
//! from its checkpoint, for each event, it asks the pure reaction logic in
//! [`ordo_domain::process`] what should follow (authorize the payment, confirm the order and
//! commit its stock, cancel it and release the stock, void or refund) and sends those commands
//! through the normal command path. Delivery is at least once: the checkpoint moves only after
//! a batch's reactions are done, and every command a reaction sends carries ids derived from
//! the triggering event, so a repeat after a crash is a no-op in the store.
//!
//! Cart expiry is driven from the same log: each open cart's due time is kept in the same file
//! and transaction as the checkpoint ([`state`]), and a timer sends `ExpireCart` when one falls
//! due, including carts that fell due while the server was down. No Redis keyspace
//! notifications: they are lost while nobody listens.
//!
//! - this file: the runtime and its handler (batches, groups, checkpoint);
//! - `reactions`: carrying a reaction out (commands, provider calls, refusals);
//! - `expiry`: the cart expiry timer;
//! - [`state`]: the checkpoint and due times, in a file or shared in the store's database.
//!
//! With several instances the runtime runs only in the holder of the `checkout` role's lease
//! ([`crate::leases`]); every effect is taken only while that lease holds, and the checkpoint
//! is saved fenced by it.

mod expiry;
mod reactions;
pub mod state;

use crate::ids::aggregate_id;
use crate::leases::Lease;
use crate::payments::PaymentGateway;
use crate::shop::Shop;
use ordo_domain::cart::{Cart, CartEvent, CartState};
use ordo_domain::order::{Order, OrderEvent, OrderState};
use ordo_domain::payment::PaymentEvent;
use ordo_domain::process::{expiry_due_after, react_to_cart, react_to_order, react_to_payment};
use ordo_domain::{Decider, OrderId};
use ordo_eventstore::clock::now;
use ordo_eventstore::codec::{CodecError, DomainEvent};
use ordo_eventstore::follow::{follow, FollowConfig, FollowError, Handler};
use ordo_eventstore::{Direction, EventFilter, EventStore, Position, RecordedEvent, StoreError};
use state::{ProcessState, StateError};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Why a process step or the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored event does not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The checkpoint file failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// A stream kept changing concurrently.
    #[error("{0} kept changing concurrently")]
    Contention(String),
    /// A stream the log delivered an event of read back empty.
    #[error("{0} read back empty after the log delivered its event")]
    Unreadable(String),
    /// Asked to stop in the middle of a batch; its checkpoint did not move.
    #[error("stopping")]
    Stopping,
    /// This instance no longer holds the checkout role's lease: no further effect is taken.
    #[error("the checkout role's lease is no longer held here")]
    NotHolder,
    /// A reaction task panicked.
    #[error("a reaction panicked: {0}")]
    Panicked(String),
    /// A stream name that is not an aggregate's.
    #[error("unexpected stream {0}")]
    Stream(String),
}

/// Settings of the processes.
#[derive(Clone, Debug)]
pub struct ProcessConfig {
    /// How long one authorization attempt may take before it counts as failed.
    pub payment_timeout: Duration,
    /// Attempts per authorization while the provider fails transiently.
    pub payment_attempts: u32,
    /// How often the expiry timer looks for due carts.
    pub expiry_tick: Duration,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            payment_timeout: Duration::from_secs(10),
            payment_attempts: 5,
            expiry_tick: Duration::from_millis(500),
        }
    }
}

/// The process runtime.
pub struct Processes<S, G> {
    shop: Arc<Shop<S>>,
    gateway: Arc<G>,
    state: Arc<ProcessState>,
    config: ProcessConfig,
    /// Open carts and when they fall due, shared with the expiry timer.
    due: Arc<Mutex<BTreeMap<String, i64>>>,
}

impl<S: EventStore, G: PaymentGateway> Processes<S, G> {
    /// The runtime over `shop`'s command path.
    pub fn new(
        shop: Arc<Shop<S>>,
        gateway: Arc<G>,
        state: Arc<ProcessState>,
        config: ProcessConfig,
    ) -> Self {
        Self { shop, gateway, state, config, due: Arc::new(Mutex::new(BTreeMap::new())) }
    }

    /// Follows the log and reacts while `lease` holds, until `stopping` turns true. Starts from
    /// the checkpoint and due times the state holds (a previous holder's, on a shared store).
    pub async fn run(
        self: Arc<Self>,
        lease: Lease,
        stopping: watch::Receiver<bool>,
    ) -> Result<(), ProcessError> {
        *self.due.lock().unwrap_or_else(|p| p.into_inner()) = self.state.carts_due().await?;
        let expiry = tokio::spawn(self.clone().expire_due_carts(lease.clone(), stopping.clone()));
        let store = self.shop.store().clone();
        let mut handler = CheckoutHandler { processes: self, lease, stopping: stopping.clone() };
        let config = FollowConfig { batch_size: BATCH, ..FollowConfig::default() };
        let result = follow(&*store, &mut handler, &config, None, stopping).await;
        expiry.abort();
        match result {
            Ok(()) => Ok(()),
            Err(FollowError::Handler { source, .. }) => Err(source),
            Err(FollowError::Closed) => Err(ProcessError::Store(StoreError::Closed)),
        }
    }

    /// Handles one batch: events of one order (its order and payment streams) or one cart in
    /// log order, different orders and carts concurrently, so one slow payment provider call
    /// does not hold up every other checkout. Then the checkpoint and the cart due changes are
    /// saved in one transaction.
    async fn handle_batch(
        self: &Arc<Self>,
        batch: &[RecordedEvent],
        lease: &Lease,
        stopping: &watch::Receiver<bool>,
    ) -> Result<(), ProcessError> {
        let Some(last) = batch.last().map(|e| e.position.0) else { return Ok(()) };
        let mut groups: HashMap<String, Vec<RecordedEvent>> = HashMap::new();
        for event in batch {
            let key = match event.stream.category() {
                "cart" => format!("cart:{}", aggregate_id(&event.stream)),
                _ => format!("order:{}", aggregate_id(&event.stream)),
            };
            groups.entry(key).or_default().push(event.clone());
        }
        let mut handled = tokio::task::JoinSet::new();
        for (_, events) in groups {
            let (this, lease, stopping) = (self.clone(), lease.clone(), stopping.clone());
            handled.spawn(async move { this.handle_in_order(&events, &lease, &stopping).await });
        }
        let mut due_changes = HashMap::new();
        let mut stopped = false;
        while let Some(group) = handled.join_next().await {
            match group.map_err(|e| ProcessError::Panicked(e.to_string()))? {
                Some(due) => due_changes.extend(due),
                None => stopped = true,
            }
        }
        if stopped {
            // Some reactions did not finish: the checkpoint stays before the batch.
            return Err(match lease.is_held() {
                true => ProcessError::Stopping,
                false => ProcessError::NotHolder,
            });
        }
        // Fenced: refused if another instance took the role meanwhile.
        self.state.save(CHECKPOINT, lease, last, due_changes).await?;
        Ok(())
    }

    /// Handles `events` one after the other, retrying each until it succeeds (transient
    /// failures: store, contention); the checkpoint stays before them meanwhile, so a crash
    /// repeats them too. Returns the cart due changes, or `None` if asked to stop or the lease
    /// is gone.
    async fn handle_in_order(
        &self,
        events: &[RecordedEvent],
        lease: &Lease,
        stopping: &watch::Receiver<bool>,
    ) -> Option<HashMap<String, Option<i64>>> {
        let mut due = HashMap::new();
        for event in events {
            let mut pause = Duration::from_millis(50);
            while let Err(e) = self.handle(event, &mut due, lease).await {
                if matches!(e, ProcessError::NotHolder) {
                    return None;
                }
                tracing::warn!(error = %e, position = event.position.0, "process step failed; retrying");
                metrics::counter!("ordo_process_step_retries_total").increment(1);
                if *stopping.borrow() {
                    return None;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
        Some(due)
    }

    async fn fold<D: Decider>(&self, event: &RecordedEvent) -> Result<D::State, ProcessError>
    where
        D::Event: DomainEvent,
    {
        let history = self
            .shop
            .store()
            .read_stream(&event.stream, 0, Direction::Forward, event.version as usize + 1)
            .await?;
        let mut state = D::initial_state();
        for recorded in &history {
            state = D::evolve(state, &D::Event::from_recorded(recorded)?);
        }
        Ok(state)
    }

    async fn handle(
        &self,
        event: &RecordedEvent,
        due: &mut HashMap<String, Option<i64>>,
        lease: &Lease,
    ) -> Result<(), ProcessError> {
        let at = now();
        let reactions = match event.stream.category() {
            "order" => {
                let e = OrderEvent::from_recorded(event)?;
                // The log just delivered this event, so its stream cannot be empty: if reading
                // it says otherwise, that is a failure to retry, never a reason to move on.
                let OrderState(Some(order)) = self.fold::<Order>(event).await? else {
                    return Err(ProcessError::Unreadable(event.stream.to_string()));
                };
                react_to_order(&e, &order, at)
            }
            "payment" => {
                let e = PaymentEvent::from_recorded(event)?;
                let order_id = OrderId::parse(aggregate_id(&event.stream))
                    .map_err(|_| ProcessError::Stream(event.stream.to_string()))?;
                react_to_payment(&e, &order_id, at)
            }
            "cart" => {
                let e = CartEvent::from_recorded(event)?;
                let cart_id = aggregate_id(&event.stream).to_owned();
                // The due time comes off the event itself; only expiry needs the cart's lines.
                let due_at = expiry_due_after(&e);
                due.insert(cart_id.clone(), due_at.map(|t| t.0));
                {
                    let mut open = self.due.lock().unwrap_or_else(|p| p.into_inner());
                    match due_at {
                        Some(t) => open.insert(cart_id, t.0),
                        None => open.remove(&cart_id),
                    };
                }
                match &e {
                    CartEvent::Expired(_) => match self.fold::<Cart>(event).await? {
                        CartState(Some(cart)) => react_to_cart(&e, &cart, at),
                        CartState(None) => vec![],
                    },
                    _ => vec![],
                }
            }
            _ => vec![],
        };
        // An event's reactions go to different streams (a line's product each, the payment),
        // so they run together and share the store's next commits: an order of four lines
        // confirmed took four commits one after another, and its batch, every other order's
        // next step with it, waited for them. Each runs to its end; the first failure is the
        // answer, and the retry repeats the ones done as no-ops (their ids derive from the
        // event and their index).
        let reactions = reactions.into_iter().enumerate().map(|(index, reaction)| async move {
            // Every effect (a command, a call to the payment provider) only while this
            // instance still holds the role: a holder resumed after a pause past its lease
            // takes none.
            if !lease.is_held() {
                return Err(ProcessError::NotHolder);
            }
            self.react(reaction, event, index).await
        });
        futures_util::future::join_all(reactions).await.into_iter().collect()
    }
}

/// The checkout process's checkpoint name in its state.
pub const CHECKPOINT: &str = "checkout";
/// The events the checkout process follows: orders, payments and carts.
pub fn filter() -> EventFilter {
    EventFilter::streams_starting_with(["order-", "payment-", "cart-"])
}

/// Events handled per checkpoint write, at most. A batch ends when its slowest order does (a
/// payment provider taking seconds), so under a backlog the batch size is the process's
/// throughput per slow call: with 256 and a 2 s provider, a soak of three instances measured
/// about 128 events/s and the process never caught up. A crash repeats at most one batch, as
/// no-ops (every reaction's ids derive from its event).
const BATCH: usize = 2_048;

/// The processes as the log follower's handler.
struct CheckoutHandler<S, G> {
    processes: Arc<Processes<S, G>>,
    lease: Lease,
    stopping: watch::Receiver<bool>,
}

impl<S: EventStore, G: PaymentGateway> Handler for CheckoutHandler<S, G> {
    type Error = ProcessError;

    fn name(&self) -> &'static str {
        "checkout"
    }

    fn filter(&self) -> EventFilter {
        filter()
    }

    async fn checkpoint(&mut self) -> Result<Option<Position>, ProcessError> {
        Ok(self.processes.state.checkpoint(CHECKPOINT).await?.map(Position))
    }

    /// Records the batch's last event as the checkpoint, not `through`: nobody waits on this
    /// checkpoint, so reading past other streams' events records nothing (an empty batch).
    async fn handle(
        &mut self,
        batch: &[RecordedEvent],
        _through: Position,
    ) -> Result<(), ProcessError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.processes.handle_batch(batch, &self.lease, &self.stopping).await
    }

    /// A state file that cannot be written, a reaction that panicked, or a lease lost to
    /// another instance will not heal by waiting. Failures of single reactions (the store,
    /// contention, an undecodable event) never reach here: `handle_in_order` retries each
    /// event on its own, so one failing order does not make every other order of the batch run
    /// again.
    fn is_permanent(&self, error: &ProcessError) -> bool {
        match error {
            ProcessError::State(e) => !e.is_transient(),
            ProcessError::Panicked(_) | ProcessError::NotHolder => true,
            _ => false,
        }
    }
}

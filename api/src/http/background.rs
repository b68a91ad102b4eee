//! The work `ordo serve` does besides answering requests, each part a role that runs in one
//! instance at a time under its lease ([`ordo_application::leases`]): the checkout process
//! (with cart expiry), the outbox, and one runner per projection. On the embedded store every
//! role is this server's; on a shared store they spread over the instances that ask.
//!
//! The roles run on a runtime of their own, on their own thread (ADR 0025). On the request
//! handlers' runtime, every commit woke five followers into the same queues as the requests:
//! each follower's every await waited behind the requests queued there, and the workers
//! spent CPU handing the followers to each other. On a thread of their own, the kernel runs
//! them as one more thread: the followers a commit wakes run back to back, and the request
//! workers' queues hold requests only.

use ordo_application::leases::Roles;
use ordo_application::outbox;
use ordo_application::payments::Simulator;
use ordo_application::processes::state::ProcessState;
use ordo_application::processes::Processes;
use ordo_eventstore::AnyStore;
use ordo_projections::runner::RunnerConfig;
use ordo_projections::supervisor::supervise;
use ordo_projections::views::{CartView, OrderView, ProductView, View};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The checkout process and cart expiry.
pub const CHECKOUT: &str = "checkout";
/// The outbox publisher.
pub const OUTBOX: &str = "outbox";

/// The role of `V`'s projection runner.
pub fn projection_role(projection: &str) -> String {
    format!("projection:{projection}")
}

/// Every role, in the order `GET /v1/admin/roles` lists them.
pub fn all_roles() -> Vec<String> {
    let mut roles = vec![CHECKOUT.to_owned(), OUTBOX.to_owned()];
    for projection in [OrderView::PROJECTION, ProductView::PROJECTION, CartView::PROJECTION] {
        roles.push(projection_role(projection));
    }
    roles
}

/// What the roles need.
pub struct Work {
    pub roles: Arc<Roles>,
    pub store: Arc<AnyStore>,
    pub redis: redis::Client,
    pub processes: Arc<Processes<AnyStore, Simulator>>,
    pub process_state: Arc<ProcessState>,
}

/// The runtime the roles run on: `threads` workers named `ordo-background`.
pub fn runtime(threads: usize) -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("ordo-background")
        .enable_all()
        .build()
}

/// Starts every role's loop on `runtime`; returns the tasks (to join from anywhere) and each
/// projection's applied positions (which wake `min_position` waits when the runner is here).
pub fn start(
    work: Work,
    stopping: &watch::Receiver<bool>,
    runtime: &Handle,
) -> (JoinSet<()>, HashMap<&'static str, watch::Receiver<u64>>) {
    let mut tasks = JoinSet::new();
    let Work { roles, store, redis, processes, process_state } = work;
    let checkout = roles.clone().run(CHECKOUT, stopping.clone(), move |lease, steps_down| {
        processes.clone().run(lease, steps_down)
    });
    tasks.spawn_on(checkout, runtime);
    let (outbox_store, outbox_redis) = (store.clone(), redis.clone());
    let outbox = roles.clone().run(OUTBOX, stopping.clone(), move |lease, steps_down| {
        outbox::run(
            outbox_store.clone(),
            outbox_redis.clone(),
            process_state.clone(),
            lease,
            steps_down,
        )
    });
    tasks.spawn_on(outbox, runtime);
    let applied = HashMap::from([
        projection::<OrderView>(&mut tasks, runtime, &roles, &store, &redis, stopping),
        projection::<ProductView>(&mut tasks, runtime, &roles, &store, &redis, stopping),
        projection::<CartView>(&mut tasks, runtime, &roles, &store, &redis, stopping),
    ]);
    (tasks, applied)
}

/// Starts the role of `V`'s runner.
fn projection<V: View>(
    tasks: &mut JoinSet<()>,
    runtime: &Handle,
    roles: &Arc<Roles>,
    store: &Arc<AnyStore>,
    redis: &redis::Client,
    stopping: &watch::Receiver<bool>,
) -> (&'static str, watch::Receiver<u64>) {
    let (applied, woken) = watch::channel(0);
    let (store, redis) = (store.clone(), redis.clone());
    let role = projection_role(V::PROJECTION);
    let task = roles.clone().run(role, stopping.clone(), move |_lease, steps_down| {
        // Fenced by `WATCH` on its checkpoint: a runner that lost its lease and still writes
        // a batch finds the checkpoint moved and applies nothing.
        supervise::<V, _>(
            store.clone(),
            redis.clone(),
            RunnerConfig::default(),
            applied.clone(),
            steps_down,
        )
    });
    tasks.spawn_on(task, runtime);
    (V::PROJECTION, woken)
}

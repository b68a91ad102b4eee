//! Where an instance keeps what it must share with the others: role leases, the checkout
//! process's checkpoint and cart due times, and Idempotency-Key records (ADR 0012).
//!
//! One server on the embedded store keeps them in files beside it. Servers sharing a store
//! keep them in the store's database (PostgreSQL) or in Redis (KurrentDB, which has no tables;
//! PostgreSQL by choice), so any of them can take over any role.

use super::auth::Keys;
use super::idempotency::Idempotency;
use crate::cli::environment::DataDir;
use anyhow::Context;
use ordo_application::leases::LeaseHome;
use ordo_application::processes::state::{FileState, ProcessState};
use ordo_application::redis_shared::RedisShared;
use ordo_eventstore::AnyStore;
use std::time::Duration;

/// Where shared bookkeeping lives (`ordo serve --coordination`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coordination {
    /// The store's own database (PostgreSQL).
    Store,
    /// Redis.
    Redis,
}

/// The idempotency records, process state and lease home for `store` as `chosen` (`None`:
/// the store's default), or a one-line reason the combination cannot work.
pub(super) fn bookkeeping(
    store: &AnyStore,
    chosen: Option<Coordination>,
    redis: &redis::Client,
    data: &DataDir,
    keys: &Keys,
    instance: &str,
) -> anyhow::Result<(Idempotency, ProcessState, LeaseHome)> {
    Ok(match (store, chosen) {
        (AnyStore::Postgres(shared), None | Some(Coordination::Store)) => (
            Idempotency::shared(shared.clone(), keys.clone(), instance),
            ProcessState::Shared(shared.clone()),
            LeaseHome::Postgres(shared.clone()),
        ),
        (AnyStore::Postgres(_) | AnyStore::Kurrent(_), None | Some(Coordination::Redis)) => {
            // Short timeouts: a lease call that hangs is a lease that lapses.
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(Duration::from_secs(2)));
            let shared = RedisShared::new(redis.get_connection_manager_lazy(config)?);
            (
                Idempotency::in_redis(shared.clone(), keys.clone(), instance),
                ProcessState::Redis(shared.clone()),
                LeaseHome::Redis(shared),
            )
        }
        (AnyStore::Kurrent(_), Some(Coordination::Store)) => anyhow::bail!(
            "--coordination store: KurrentDB has no tables for leases and checkpoints; use --coordination redis (the default there)"
        ),
        (AnyStore::Embedded(_), Some(Coordination::Redis)) => anyhow::bail!(
            "--coordination redis is for servers sharing a store (PostgreSQL or KurrentDB); the embedded store belongs to one server"
        ),
        (AnyStore::Embedded(_), None | Some(Coordination::Store)) => (
            Idempotency::open(&data.data_dir.join("requests.redb"), keys.clone())
                .context("opening the idempotency store")?,
            ProcessState::File(
                FileState::open(&data.data_dir.join("processes.redb"))
                    .context("opening the process state")?,
            ),
            LeaseHome::Local,
        ),
    })
}

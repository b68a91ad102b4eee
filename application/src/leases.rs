//! Work that must happen once, run by one instance at a time: each such role (the checkout
//! process with cart expiry, the outbox, each projection runner) is held under a lease, and
//! only its holder runs it. Roles spread over instances: every instance tries to take every
//! free role, and whoever asks first gets it. ADR 0012 has the design; in short:
//!
//! - On the embedded store the lease is local and always granted: the store file is locked by
//!   one process, so there is nobody to share with.
//! - On PostgreSQL the lease is a row in the store's database ([`ordo_eventstore::postgres::shared`]),
//!   timed by the database's clock. A holder renews it every [`LeaseConfig::renew_every`];
//!   a lease not renewed for [`LeaseConfig::ttl`] lapses and the next instance to ask takes it,
//!   with the epoch one higher.
//! - In Redis ([`crate::redis_shared`]) the lease is a hash with the same fields, changed by
//!   scripts timed by Redis's clock: the home for stores that have no database to share
//!   (KurrentDB), or by choice (`ordo serve --coordination redis`).
//! - A holder trusts its lease only until `sent + ttl`, counted on its own monotonic clock from
//!   *before* the renewal it sent, so it always stops believing it holds the role before the
//!   database lets anyone else take it. A process paused by SIGSTOP resumes with that deadline
//!   long past: its role's work checks [`Lease::is_held`] before every effect and finds it
//!   gone, and its checkpoint writes are fenced by the epoch in the database.

use crate::redis_shared::RedisShared;
use ordo_eventstore::postgres::shared::LeaseRow;
use ordo_eventstore::postgres::PostgresStore;
use ordo_eventstore::StoreError;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Lease timings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// How long a lease lives without renewal; a dead holder's role is free after this.
    pub ttl: Duration,
    /// How often a holder renews.
    pub renew_every: Duration,
    /// How often an instance asks for a role it does not hold.
    pub retry_every: Duration,
    /// How long a role's work gets to stop after its holder steps down.
    pub stop_within: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(5),
            renew_every: Duration::from_secs(1),
            retry_every: Duration::from_secs(1),
            stop_within: Duration::from_secs(10),
        }
    }
}

/// Where leases live.
#[derive(Clone)]
pub enum LeaseHome {
    /// One process owns the store: every role is always this instance's.
    Local,
    /// Rows in the PostgreSQL store's database.
    Postgres(PostgresStore),
    /// Hashes in Redis.
    Redis(RedisShared),
}

/// A lease as the role's work sees it: whether it still holds, and its fencing token.
#[derive(Clone, Debug)]
pub struct Lease {
    role: Arc<str>,
    epoch: i64,
    /// `None`: a local lease, held for good.
    until: Option<Arc<Mutex<Instant>>>,
}

impl Lease {
    /// A lease that is always held (one process on its own store, and tests).
    pub fn local(role: &str) -> Self {
        Self { role: role.into(), epoch: 0, until: None }
    }

    /// Whether this instance may still act as the role's holder. Checked before every effect.
    pub fn is_held(&self) -> bool {
        match &self.until {
            None => true,
            Some(until) => Instant::now() < *until.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// The fencing token written checks: the role and the epoch held. `None` for a local lease.
    pub fn fence(&self) -> Option<(&str, i64)> {
        self.until.as_ref().map(|_| (&*self.role, self.epoch))
    }

    /// The role.
    pub fn role(&self) -> &str {
        &self.role
    }

    fn extend(&self, to: Instant) {
        if let Some(until) = &self.until {
            *until.lock().unwrap_or_else(|p| p.into_inner()) = to;
        }
    }
}

/// Who holds a role, as `GET /v1/admin/roles` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The role.
    pub role: String,
    /// The instance holding it.
    pub instance: String,
    /// Takeovers so far.
    pub epoch: i64,
    /// Since when (Unix ms).
    pub since_ms: i64,
    /// Until when unless renewed (Unix ms); `None` for a local lease.
    pub expires_ms: Option<i64>,
    /// Whether the lease is live (not lapsed).
    pub live: bool,
}

fn holder(row: LeaseRow) -> Holder {
    let LeaseRow { role, holder, epoch, acquired_at_ms, expires_at_ms, now_ms } = row;
    Holder {
        role,
        instance: holder,
        epoch,
        since_ms: acquired_at_ms,
        expires_ms: Some(expires_at_ms),
        live: expires_at_ms > now_ms,
    }
}

/// One instance's side of the leases: which roles it holds, and the loop that takes them.
pub struct Roles {
    home: LeaseHome,
    instance: String,
    config: LeaseConfig,
    /// Roles held here: epoch and since (Unix ms).
    held: Mutex<BTreeMap<Arc<str>, (i64, i64)>>,
}

impl Roles {
    /// This instance (`instance` names it in logs, metrics and the lease rows).
    pub fn new(home: LeaseHome, instance: impl Into<String>, config: LeaseConfig) -> Self {
        Self { home, instance: instance.into(), config, held: Mutex::new(BTreeMap::new()) }
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Who holds each role: the lease rows, or on a local home this instance's roles.
    pub async fn holders(&self) -> Result<Vec<Holder>, StoreError> {
        match &self.home {
            LeaseHome::Local => Ok(self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(role, (epoch, since))| Holder {
                    role: role.to_string(),
                    instance: self.instance.clone(),
                    epoch: *epoch,
                    since_ms: *since,
                    expires_ms: None,
                    live: true,
                })
                .collect()),
            LeaseHome::Postgres(store) => {
                Ok(store.leases().await?.into_iter().map(holder).collect())
            }
            LeaseHome::Redis(redis) => Ok(redis.leases().await?.into_iter().map(holder).collect()),
        }
    }

    /// Whether this instance holds `role` now.
    pub fn holds(&self, role: &str) -> bool {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).contains_key(role)
    }

    /// Runs `work` whenever this instance holds `role`, until `stopping` turns true. `work` gets
    /// the lease and a stop signal that turns true when the lease is lost or on shutdown; when
    /// it returns (or fails) the lease is given up and asked for again.
    pub async fn run<W, F, E>(
        self: Arc<Self>,
        role: impl Into<Arc<str>>,
        mut stopping: watch::Receiver<bool>,
        mut work: W,
    ) where
        W: FnMut(Lease, watch::Receiver<bool>) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let role: Arc<str> = role.into();
        let labels = [("role", role.to_string()), ("instance", self.instance.clone())];
        let gauge = metrics::gauge!("ordo_role_held", &labels);
        gauge.set(0.0);
        while !*stopping.borrow() {
            let Some(lease) = self.acquire(&role).await else {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.retry_every) => continue,
                    _ = stopping.changed() => break,
                }
            };
            tracing::info!(%role, epoch = lease.epoch, instance = %self.instance, "took the role");
            self.held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(role.clone(), (lease.epoch, ordo_eventstore::clock::now_millis()));
            gauge.set(1.0);
            let (step_down, steps_down) = watch::channel(false);
            let mut task = tokio::spawn(work(lease.clone(), steps_down));
            let why = loop {
                tokio::select! {
                    ended = &mut task => break match ended {
                        Ok(Ok(())) => "its work ended".to_owned(),
                        Ok(Err(error)) => format!("its work failed: {error}"),
                        Err(panic) => format!("its work panicked: {panic}"),
                    },
                    _ = tokio::time::sleep(self.config.renew_every) => {
                        if let Some(lost) = self.renew(&lease).await {
                            break lost;
                        }
                    }
                    _ = stopping.changed() => break "shutting down".to_owned(),
                }
            };
            let _ = step_down.send(true);
            if !task.is_finished()
                && tokio::time::timeout(self.config.stop_within, &mut task).await.is_err()
            {
                task.abort();
            }
            self.held.lock().unwrap_or_else(|p| p.into_inner()).remove(&role);
            gauge.set(0.0);
            self.release(&lease).await;
            if *stopping.borrow() {
                tracing::info!(%role, epoch = lease.epoch, instance = %self.instance, "stepped down: {why}");
            } else {
                tracing::warn!(%role, epoch = lease.epoch, instance = %self.instance, "stepped down: {why}");
            }
            if !*stopping.borrow() {
                // Give another instance the chance to take it before asking again.
                tokio::time::sleep(self.config.retry_every).await;
            }
        }
    }

    async fn acquire(&self, role: &Arc<str>) -> Option<Lease> {
        let sent = Instant::now();
        let (instance, ttl) = (self.instance.as_str(), self.config.ttl);
        let taken = match &self.home {
            LeaseHome::Local => return Some(Lease::local(role)),
            LeaseHome::Postgres(store) => store.try_acquire(role, instance, ttl).await,
            LeaseHome::Redis(redis) => redis.try_acquire(role, instance, ttl).await,
        };
        match taken {
            Ok(Some(epoch)) => Some(Lease {
                role: role.clone(),
                epoch,
                until: Some(Arc::new(Mutex::new(sent + ttl))),
            }),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%role, error = %error, "cannot reach the lease home");
                None
            }
        }
    }

    /// Renews `lease`; why it is lost, if it is.
    async fn renew(&self, lease: &Lease) -> Option<String> {
        let (role, instance, ttl) = (&*lease.role, self.instance.as_str(), self.config.ttl);
        let sent = Instant::now();
        let renewed = match &self.home {
            LeaseHome::Local => return None,
            LeaseHome::Postgres(store) => {
                tokio::time::timeout(ttl, store.renew(role, instance, lease.epoch, ttl)).await
            }
            LeaseHome::Redis(redis) => {
                tokio::time::timeout(ttl, redis.renew(role, instance, lease.epoch, ttl)).await
            }
        };
        match renewed {
            Ok(Ok(true)) if lease.is_held() => {
                lease.extend(sent + self.config.ttl);
                None
            }
            Ok(Ok(_)) => {
                Some(format!("the lease lapsed or was taken over (epoch {})", lease.epoch))
            }
            Ok(Err(error)) if lease.is_held() => {
                tracing::warn!(role = %lease.role, error = %error, "could not renew the lease; retrying");
                None
            }
            Ok(Err(error)) => Some(format!("the lease lapsed while its home failed: {error}")),
            Err(_) if lease.is_held() => None,
            Err(_) => Some("the lease lapsed while renewing it timed out".to_owned()),
        }
    }

    async fn release(&self, lease: &Lease) {
        let released = match &self.home {
            LeaseHome::Local => Ok(()),
            LeaseHome::Postgres(store) => {
                store.release(&lease.role, &self.instance, lease.epoch).await
            }
            LeaseHome::Redis(redis) => {
                redis.release(&lease.role, &self.instance, lease.epoch).await
            }
        };
        if let Err(error) = released {
            tracing::debug!(role = %lease.role, error = %error, "could not release the lease; it lapses");
        }
    }
}

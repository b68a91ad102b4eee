//! Where idempotent requests' first responses are kept, and which keys are in flight: a redb
//! file beside the embedded store, the PostgreSQL store's `requests` table, or Redis.

use super::RETENTION;
use crate::http::auth::Keys;
use ordo_application::redis_shared::RedisShared;
use ordo_eventstore::postgres::shared::RequestClaim;
use ordo_eventstore::postgres::PostgresStore;
use poem::Request;
use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a shared claim stands without an answer before the key may run again (its
/// instance died mid-request): longer than a command takes (milliseconds, at most the
/// store's few seconds of retries), short enough that a client retrying on another instance
/// after a crash is not kept waiting long. A command run again after its claim lapsed is
/// still a no-op in the store (its event ids come from the key).
const CLAIM: Duration = Duration::from_secs(10);

/// Record key (SHA-256 of scope and key) -> postcard-encoded [`Stored`].
const RESPONSES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("responses");

/// A stored first response.
#[derive(Serialize, Deserialize)]
pub(super) struct Stored {
    pub(super) created_ms: u64,
    pub(super) fingerprint: [u8; 32],
    pub(super) status: u16,
    pub(super) content_type: String,
    pub(super) body: Vec<u8>,
}

/// Why the response store failed; the cause is kept.
#[derive(Debug, thiserror::Error)]
#[error("the idempotency store failed")]
pub struct StoreFailure(#[source] Box<dyn std::error::Error + Send + Sync>);

fn failure(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreFailure {
    StoreFailure(e.into())
}

/// Where stored responses live.
enum Backend {
    /// `requests.redb` beside the embedded store; keys in flight are tracked in memory.
    File(Arc<redb::Database>),
    /// The PostgreSQL store's `requests` table, shared by every instance: a key in flight is a
    /// claimed row, so a duplicate gets 409 whichever instance it lands on.
    Shared(PostgresStore),
    /// Hashes in Redis, shared the same way, expiring after [`RETENTION`] on their own.
    Redis(RedisShared),
}

/// The stored responses and the keys in flight.
pub struct Idempotency {
    backend: Backend,
    in_flight: Mutex<HashSet<[u8; 32]>>,
    keys: Keys,
    /// Names this instance's claims.
    pub(super) instance: String,
}

/// What a request's key found.
pub(super) enum Lookup {
    /// Run the request (the key is claimed until the guard drops).
    Run,
    /// Another request with this key is running.
    InProgress,
    /// It already ran: its stored response.
    Stored(Stored),
}

impl Idempotency {
    /// Opens (or creates) the response store at `path`; `keys` identify callers.
    pub fn open(path: &Path, keys: Keys) -> Result<Self, StoreFailure> {
        let db = redb::Database::create(path).map_err(failure)?;
        let write = db.begin_write().map_err(failure)?;
        write.open_table(RESPONSES).map_err(failure)?;
        write.commit().map_err(failure)?;
        Ok(Self::with(Backend::File(Arc::new(db)), keys, String::new()))
    }

    /// Stored responses shared through the PostgreSQL store's database; `instance` names this
    /// server's claims.
    pub fn shared(store: PostgresStore, keys: Keys, instance: &str) -> Self {
        Self::with(Backend::Shared(store), keys, instance.to_owned())
    }

    /// Stored responses shared through Redis; `instance` names this server's claims.
    pub fn in_redis(redis: RedisShared, keys: Keys, instance: &str) -> Self {
        Self::with(Backend::Redis(redis), keys, instance.to_owned())
    }

    fn with(backend: Backend, keys: Keys, instance: String) -> Self {
        Self { backend, in_flight: Mutex::new(HashSet::new()), keys, instance }
    }

    /// Deletes responses older than [`RETENTION`]; returns how many.
    pub async fn purge(&self) -> Result<u64, StoreFailure> {
        let cutoff = unix_ms().saturating_sub(RETENTION.as_millis() as u64);
        let db = match &self.backend {
            Backend::File(db) => db.clone(),
            Backend::Shared(store) => {
                return store.purge_requests(cutoff as i64).await.map_err(failure);
            }
            // Each record expires on its own.
            Backend::Redis(_) => return Ok(0),
        };
        tokio::task::spawn_blocking(move || {
            let write = db.begin_write().map_err(failure)?;
            let mut removed = 0;
            {
                let mut table = write.open_table(RESPONSES).map_err(failure)?;
                table
                    .retain(|_, value| {
                        let keep = postcard::from_bytes::<Stored>(value)
                            .is_ok_and(|s| s.created_ms >= cutoff);
                        removed += u64::from(!keep);
                        keep
                    })
                    .map_err(failure)?;
            }
            write.commit().map_err(failure)?;
            Ok(removed)
        })
        .await
        .map_err(failure)?
    }

    /// Claims `record` for `owner`, or finds it running or done.
    pub(super) async fn begin(
        &self,
        record: [u8; 32],
        fingerprint: [u8; 32],
        owner: &str,
    ) -> Result<Lookup, StoreFailure> {
        let claim = match &self.backend {
            Backend::Shared(store) => store
                .claim_request(&record, &fingerprint, owner, CLAIM, unix_ms() as i64)
                .await
                .map_err(failure)?,
            Backend::Redis(redis) => redis
                .claim_request(&record, &fingerprint, owner, CLAIM, RETENTION)
                .await
                .map_err(failure)?,
            Backend::File(db) => return self.begin_in_file(db.clone(), record).await,
        };
        Ok(match claim {
            RequestClaim::Claimed => Lookup::Run,
            RequestClaim::InProgress => Lookup::InProgress,
            RequestClaim::Done { response, .. } => {
                Lookup::Stored(postcard::from_bytes(&response).map_err(failure)?)
            }
        })
    }

    /// [`Idempotency::begin`] on the local file: claims are marks in memory.
    async fn begin_in_file(
        &self,
        db: Arc<redb::Database>,
        record: [u8; 32],
    ) -> Result<Lookup, StoreFailure> {
        if !self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(record) {
            return Ok(Lookup::InProgress);
        }
        let loaded = tokio::task::spawn_blocking(move || {
            let read = db.begin_read().map_err(failure)?;
            let table = read.open_table(RESPONSES).map_err(failure)?;
            let Some(value) = table.get(record.as_slice()).map_err(failure)? else {
                return Ok(None);
            };
            postcard::from_bytes(value.value()).map(Some).map_err(failure)
        })
        .await
        .map_err(failure)
        .and_then(|loaded| loaded);
        match loaded {
            Ok(None) => Ok(Lookup::Run),
            Ok(Some(stored)) => {
                self.release(record);
                Ok(Lookup::Stored(stored))
            }
            Err(e) => {
                self.release(record);
                Err(e)
            }
        }
    }

    /// Stores the response of the request `owner` ran.
    pub(super) async fn save(
        &self,
        record: [u8; 32],
        owner: &str,
        stored: Stored,
    ) -> Result<(), StoreFailure> {
        let bytes = postcard::to_stdvec(&stored).map_err(failure)?;
        let db = match &self.backend {
            Backend::Shared(store) => {
                return store.finish_request(&record, owner, &bytes).await.map_err(failure);
            }
            Backend::Redis(redis) => {
                return redis
                    .finish_request(&record, owner, &bytes, RETENTION)
                    .await
                    .map_err(failure);
            }
            Backend::File(db) => db.clone(),
        };
        tokio::task::spawn_blocking(move || {
            let write = db.begin_write().map_err(failure)?;
            write
                .open_table(RESPONSES)
                .map_err(failure)?
                .insert(record.as_slice(), bytes.as_slice())
                .map_err(failure)?;
            write.commit().map_err(failure)
        })
        .await
        .map_err(failure)?
    }

    fn release(&self, record: [u8; 32]) {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&record);
    }

    /// Whose keys these are: the token's subject, so one client's keys never collide with
    /// another's (and a refreshed token keeps its keys).
    pub(super) fn scope(&self, req: &Request) -> String {
        let token = req
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")));
        match token.map(|t| self.keys.verify(t)) {
            Some(Ok(caller)) => format!("subject:{}", caller.subject),
            Some(Err(_)) => format!("token:{}", token.unwrap_or_default()),
            None => "anonymous".to_owned(),
        }
    }
}

pub(super) fn unix_ms() -> u64 {
    u64::try_from(ordo_eventstore::clock::now_millis()).unwrap_or(0)
}

/// Lets go of a claimed key however the request ends (even if cancelled): the in-memory
/// mark, and a shared claim that stored no response.
pub(super) struct Claim {
    pub(super) store: Arc<Idempotency>,
    pub(super) record: [u8; 32],
    pub(super) owner: String,
    pub(super) saved: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        match &self.store.backend {
            Backend::File(_) => self.store.release(self.record),
            Backend::Shared(shared) if !self.saved => {
                let (shared, record, owner) = (shared.clone(), self.record, self.owner.clone());
                // Without this the key would answer 409 until the claim lapses.
                tokio::spawn(async move {
                    if let Err(e) = shared.abandon_request(&record, &owner).await {
                        tracing::warn!(error = %e, "could not drop an idempotency claim; it lapses");
                    }
                });
            }
            Backend::Redis(redis) if !self.saved => {
                let (redis, record, owner) = (redis.clone(), self.record, self.owner.clone());
                tokio::spawn(async move {
                    if let Err(e) = redis.abandon_request(&record, &owner).await {
                        tracing::warn!(error = %e, "could not drop an idempotency claim; it lapses");
                    }
                });
            }
            Backend::Shared(_) | Backend::Redis(_) => {}
        }
    }
}

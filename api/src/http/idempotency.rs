//! `Idempotency-Key` on POST: a retried request gets the first response and changes nothing.
//!
//! The middleware sits in front of every operation. For a POST carrying the header it
//! fingerprints the request (method, path and query, body) under the caller's scope (the
//! token's subject), then:
//! - a key whose first request succeeded (2xx) answers with that stored response, marked
//!   `Idempotent-Replayed: true`, if the fingerprint matches, and with 422 if it does not;
//! - a key whose request is still running answers 409 (the client retried too early);
//! - otherwise the request runs, and a 2xx response is stored for 24 hours.
//!
//! Refusals (4xx) are not stored: a refused command changed nothing, so retrying it under the
//! same key is safe and may succeed later (stock arrives, a typo is fixed). Stored responses
//! live in their own redb file beside the event store (`requests.redb`), so they survive
//! restarts; servers sharing a store keep them in its database (PostgreSQL) or in Redis
//! (KurrentDB, or `--coordination redis`) instead, so a retry
//! landing on another server gets the first response, and a key in flight on one server
//! answers 409 on all of them. A crash after the command's events are appended but before its response is
//! stored is covered one level down: the key also fixes the command's event ids, so the store
//! recognises the re-sent events (see `docs/adr/0008-auth-and-idempotency.md`).

use super::problem::Problem;
use crate::http::auth::Keys;
use ordo_application::redis_shared::RedisShared;
use ordo_eventstore::postgres::shared::RequestClaim;
use ordo_eventstore::postgres::PostgresStore;
use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};
use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;
/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
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
struct Stored {
    created_ms: u64,
    fingerprint: [u8; 32],
    status: u16,
    content_type: String,
    body: Vec<u8>,
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
    instance: String,
}

/// What a request's key found.
enum Lookup {
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
    async fn begin(
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
    async fn save(
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
    fn scope(&self, req: &Request) -> String {
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

/// The UUID a command derives its event ids from, for `key` sent by `subject`.
pub fn key_uuid(subject: &str, key: &str) -> uuid::Uuid {
    ordo_application::ids::name_uuid(&format!("idempotency\0subject:{subject}\0{key}"))
}

fn unix_ms() -> u64 {
    u64::try_from(ordo_eventstore::clock::now_millis()).unwrap_or(0)
}

fn problem(status: u16, kind: &str, title: &str, detail: impl Into<String>) -> Response {
    Problem::new(status, kind, title, detail).into_response()
}

/// Lets go of a claimed key however the request ends (even if cancelled): the in-memory
/// mark, and a shared claim that stored no response.
struct Claim {
    store: Arc<Idempotency>,
    record: [u8; 32],
    owner: String,
    saved: bool,
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

/// The request's `Idempotency-Key`, if it is a POST that sends one: the requests this middleware
/// answers for.
pub fn key(req: &Request) -> Option<String> {
    (req.method() == Method::POST).then(|| req.header(HEADER)).flatten().map(str::to_owned)
}

/// The middleware (see the module documentation), for a request sending `key` ([`key`]).
pub async fn around<E: Endpoint>(
    next: &E,
    mut req: Request,
    key: String,
    store: &Arc<Idempotency>,
) -> poem::Result<Response> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Ok(problem(
            400,
            "bad-request",
            "The request is not valid",
            format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    let body = req.take_body().into_bytes().await?;
    let scope = store.scope(&req);
    let record: [u8; 32] = Sha256::new()
        .chain_update(scope.as_bytes())
        .chain_update([0])
        .chain_update(key.as_bytes())
        .finalize()
        .into();
    let fingerprint: [u8; 32] = Sha256::new()
        .chain_update(req.method().as_str())
        .chain_update([0])
        .chain_update(req.uri().path_and_query().map_or("", |p| p.as_str()))
        .chain_update([0])
        .chain_update(&body)
        .finalize()
        .into();

    let owner = format!("{}/{}", store.instance, uuid::Uuid::now_v7());
    let stored = match store.begin(record, fingerprint, &owner).await {
        Ok(Lookup::Run) => None,
        Ok(Lookup::Stored(stored)) => Some(stored),
        Ok(Lookup::InProgress) => {
            metrics::counter!("ordo_idempotency_conflicts_total", "kind" => "in_progress")
                .increment(1);
            return Ok(problem(
                409,
                "request-in-progress",
                "A request with this Idempotency-Key is still in progress",
                "retry after the first request has answered",
            ));
        }
        Err(e) => {
            tracing::error!(error = ?e, "idempotency store unavailable");
            return Ok(problem(
                503,
                "unavailable",
                "The service is unavailable",
                "idempotent requests cannot be recorded right now; retry shortly",
            ));
        }
    };
    match stored {
        Some(stored) if stored.fingerprint == fingerprint => {
            metrics::counter!("ordo_idempotency_replays_total").increment(1);
            let mut response = Response::builder()
                .status(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK))
                .header("idempotent-replayed", "true")
                .body(stored.body);
            if let Ok(value) = HeaderValue::from_str(&stored.content_type) {
                response.headers_mut().insert("content-type", value);
            }
            return Ok(response);
        }
        Some(_) => {
            metrics::counter!("ordo_idempotency_conflicts_total", "kind" => "key_reused")
                .increment(1);
            return Ok(problem(
                422,
                "idempotency-key-reused",
                "This Idempotency-Key was used for a different request",
                "send a new key for a new request; a retry must repeat the first request exactly",
            ));
        }
        None => {}
    }
    let mut claim = Claim { store: store.clone(), record, owner, saved: false };

    req.set_body(body);
    let response = next.get_response(req).await;
    if !response.status().is_success() {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = body.into_vec().await?;
    let stored = Stored {
        created_ms: unix_ms(),
        fingerprint,
        status: parts.status.as_u16(),
        content_type: parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned(),
        body: body.clone(),
    };
    match store.save(record, &claim.owner, stored).await {
        Ok(()) => claim.saved = true,
        Err(e) => {
            // The command took effect; the client has its answer. A retry with this key re-runs the
            // command, which the store turns into a no-op by its derived event ids.
            tracing::error!(error = ?e, "could not store an idempotent response");
        }
    }
    Ok(Response::from_parts(parts, body.into()))
}

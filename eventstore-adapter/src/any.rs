//! Whichever backend a store URL names, behind the one [`EventStore`] contract, so the server,
//! the processes and every command-line tool are written once.
//!
//! | URL | backend |
//! | --- | --- |
//! | none, or a path (`./data/events.redb`) | the embedded redb file |
//! | `postgres://...`, `postgresql://...` (optional `?schema=`) | [`PostgresStore`] |
//! | `kurrentdb://...`, `esdb://...` (and `+discover`) | [`KurrentStore`] |

use crate::embedded::{EmbeddedConfig, EmbeddedStore, EmbeddedSubscription};
use crate::error::StoreError;
use crate::kurrent::{KurrentStore, KurrentSubscription};
use crate::model::*;
use crate::postgres::{PostgresConfig, PostgresStore, PostgresSubscription};
use crate::store::{EventStore, Subscription};
use std::path::{Path, PathBuf};

/// Where a store lives, parsed from `--store` / `ORDO_STORE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded file at this path.
    Embedded(PathBuf),
    /// A PostgreSQL database (the URL as given).
    Postgres(String),
    /// A KurrentDB cluster (the URL as given).
    Kurrent(String),
}

impl StoreLocation {
    /// `url` if given, else the embedded file `default_file`.
    pub fn parse(url: Option<&str>, default_file: &Path) -> Self {
        let Some(url) = url.filter(|u| !u.trim().is_empty()) else {
            return Self::Embedded(default_file.to_owned());
        };
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Self::Postgres(url.to_owned()),
            Some("kurrentdb" | "kurrentdb+discover" | "esdb" | "esdb+discover") => {
                Self::Kurrent(url.to_owned())
            }
            Some("file") => Self::Embedded(PathBuf::from(&url["file://".len()..])),
            _ => Self::Embedded(PathBuf::from(url)),
        }
    }

    /// For messages: the file, or the URL without a password.
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(path) => path.display().to_string(),
            Self::Postgres(url) | Self::Kurrent(url) => redact(url),
        }
    }
}

/// A URL without its password (for logs and errors: a store's, a Redis replica's).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// One of the backends.
#[allow(clippy::large_enum_variant, reason = "one per process")]
pub enum AnyStore {
    /// The embedded file.
    Embedded(EmbeddedStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
    /// KurrentDB.
    Kurrent(KurrentStore),
}

/// How a tool opens the embedded file: beside a running server (read-only) or as its writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Appends and reads; the embedded file admits one writing process.
    Write,
    /// Reads only; works beside a running `ordo serve` on the embedded file.
    Read,
}

impl AnyStore {
    /// Opens the store at `location`.
    pub async fn open(location: &StoreLocation, access: Access) -> Result<Self, StoreError> {
        Ok(match location {
            StoreLocation::Embedded(path) => {
                let config = EmbeddedConfig::new(path);
                // (A read-only open of a missing file is refused by the embedded store.)
                let config = match access {
                    Access::Write => config,
                    Access::Read => config.read_only(),
                };
                Self::Embedded(EmbeddedStore::open(config)?)
            }
            StoreLocation::Postgres(url) => {
                Self::Postgres(PostgresStore::open(PostgresConfig::from_url(url)?).await?)
            }
            StoreLocation::Kurrent(url) => Self::Kurrent(KurrentStore::connect(url)?),
        })
    }

    /// Which backend, for messages and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "embedded",
            Self::Postgres(_) => "postgres",
            Self::Kurrent(_) => "kurrentdb",
        }
    }

    /// Stops accepting appends and lets queued ones finish (embedded: also flushes).
    pub fn close(&self) {
        match self {
            Self::Embedded(s) => s.close(),
            Self::Postgres(s) => s.close(),
            Self::Kurrent(_) => {}
        }
    }

    /// Walks the hash chain: `(events, head hash)`, or `None` on KurrentDB, which has none.
    pub async fn verify_chain(&self) -> Result<Option<(u64, String)>, StoreError> {
        match self {
            Self::Embedded(s) => s.verify().map(|r| Some((r.events, r.head_hash))),
            Self::Postgres(s) => s.verify().await.map(Some),
            Self::Kurrent(_) => Ok(None),
        }
    }

    /// Imports runs of recorded events (one stream each), keeping ids, order and times.
    pub async fn import_all(
        &self,
        runs: Vec<Vec<RecordedEvent>>,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        match self {
            Self::Embedded(s) => s.import_all(runs).await,
            Self::Postgres(s) => {
                // Sent together, so the writer commits many runs per transaction.
                let pending: Vec<_> = runs.into_iter().map(|run| s.import(run)).collect();
                let mut outcomes = Vec::with_capacity(pending.len());
                for outcome in futures_util::future::join_all(pending).await {
                    outcomes.push(outcome?);
                }
                Ok(outcomes)
            }
            Self::Kurrent(_) => Err(StoreError::Kurrent(
                "import into KurrentDB would give new recording times; use the server's own tools"
                    .into(),
            )),
        }
    }
}

/// The subscription of whichever backend.
#[allow(clippy::large_enum_variant, reason = "a handful per process, one per follower")]
pub enum AnySubscription {
    /// Embedded.
    Embedded(EmbeddedSubscription),
    /// PostgreSQL.
    Postgres(PostgresSubscription),
    /// KurrentDB.
    Kurrent(KurrentSubscription),
}

impl Subscription for AnySubscription {
    async fn next(&mut self) -> Result<RecordedEvent, StoreError> {
        match self {
            Self::Embedded(s) => s.next().await,
            Self::Postgres(s) => Box::pin(s.next()).await,
            Self::Kurrent(s) => Box::pin(s.next()).await,
        }
    }

    async fn next_batch(&mut self, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        match self {
            Self::Embedded(s) => s.next_batch(max).await,
            Self::Postgres(s) => Box::pin(s.next_batch(max)).await,
            Self::Kurrent(s) => Box::pin(s.next_batch(max)).await,
        }
    }

    fn read_through(&self) -> Option<Position> {
        match self {
            Self::Embedded(s) => s.read_through(),
            Self::Postgres(s) => s.read_through(),
            Self::Kurrent(s) => s.read_through(),
        }
    }
}

/// Awaits `$call` on whichever backend `$self` is, with the remote backends' futures boxed.
///
/// An `async fn` over an enum is as large as its largest arm. The remote backends' calls hold a
/// network client's state across their awaits (a PostgreSQL query's, a gRPC call's): unboxed,
/// a read was a 3,040-byte future and an append 4,496 bytes, against the embedded store's few
/// hundred, and every future awaiting the store carried the difference at every level of a
/// command, on the default backend too. The box costs one allocation per call on a backend that
/// makes a network round trip for it. (Measured with the flash sale's crowd, whose requests in
/// flight hold these futures: no change beyond the run-to-run noise, 46-85 ms p99 either way.)
macro_rules! dispatch_await {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Embedded($s) => $call.await,
            AnyStore::Postgres($s) => Box::pin($call).await,
            AnyStore::Kurrent($s) => Box::pin($call).await,
        }
    };
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Embedded($s) => $call,
            AnyStore::Postgres($s) => $call,
            AnyStore::Kurrent($s) => $call,
        }
    };
}

impl EventStore for AnyStore {
    type Subscription = AnySubscription;

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let started = std::time::Instant::now();
        let result = dispatch_await!(self, s => s.append(stream, expected, events));
        observe_append(self.kind(), started, &result);
        result
    }

    fn appends_together(&self) -> bool {
        dispatch!(self, s => s.appends_together())
    }

    async fn append_together(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let started = std::time::Instant::now();
        let result = dispatch_await!(self, s => s.append_together(parts));
        observe_append(self.kind(), started, &result);
        result
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        dispatch_await!(self, s => s.read_stream(stream, from, direction, limit))
    }

    async fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        dispatch_await!(self, s => s.read_all(from, limit))
    }

    async fn last_position(&self) -> Result<Option<Position>, StoreError> {
        dispatch_await!(self, s => s.last_position())
    }

    fn positions_count_events(&self) -> bool {
        dispatch!(self, s => s.positions_count_events())
    }

    fn refuses_reused_event_ids(&self) -> bool {
        dispatch!(self, s => s.refuses_reused_event_ids())
    }

    fn is_shared(&self) -> bool {
        dispatch!(self, s => s.is_shared())
    }

    fn reports_read_through(&self) -> bool {
        dispatch!(self, s => s.reports_read_through())
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        dispatch_await!(self, s => s.stream_version(stream))
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> Result<AnySubscription, StoreError> {
        Ok(match self {
            Self::Embedded(s) => AnySubscription::Embedded(s.subscribe_all(from, filter).await?),
            Self::Postgres(s) => {
                AnySubscription::Postgres(Box::pin(s.subscribe_all(from, filter)).await?)
            }
            Self::Kurrent(s) => {
                AnySubscription::Kurrent(Box::pin(s.subscribe_all(from, filter)).await?)
            }
        })
    }
}

/// Records an append's duration by store and outcome (`ordo_store_append_seconds`).
fn observe_append<T>(
    store: &'static str,
    started: std::time::Instant,
    result: &Result<T, StoreError>,
) {
    let outcome = match result {
        Ok(_) => "ok",
        Err(StoreError::WrongExpectedVersion { .. }) => "conflict",
        Err(_) => "error",
    };
    metrics::histogram!("ordo_store_append_seconds", "store" => store, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_backend_and_nothing_means_the_data_directorys_file() {
        let file = Path::new("data/events.redb");
        assert_eq!(StoreLocation::parse(None, file), StoreLocation::Embedded(file.into()));
        assert!(matches!(
            StoreLocation::parse(Some("postgres://u:p@h/db?schema=shop"), file),
            StoreLocation::Postgres(_)
        ));
        assert!(matches!(
            StoreLocation::parse(Some("esdb://h:2113?tls=false"), file),
            StoreLocation::Kurrent(_)
        ));
        assert_eq!(
            StoreLocation::parse(Some("/srv/ordo/events.redb"), file),
            StoreLocation::Embedded("/srv/ordo/events.redb".into())
        );
        let described = StoreLocation::parse(Some("postgres://u:secret@h/db"), file).describe();
        assert_eq!(described, "postgres://u:***@h/db");
    }

    #[tokio::test]
    async fn a_call_on_the_store_is_a_small_future_whichever_backends_are_built_in() {
        // Given the default backend behind the enum
        let dir = tempfile::tempdir().expect("temp dir");
        let location = StoreLocation::Embedded(dir.path().join("events.redb"));
        let store = AnyStore::open(&location, Access::Write).await.expect("opened");
        let stream = StreamName::new("cart-1").expect("stream name");

        // When calls are made (and not awaited)
        let read = store.read_stream(&stream, 0, Direction::Forward, 10);
        let append = store.append(&stream, ExpectedVersion::Any, vec![]);
        let sizes = [std::mem::size_of_val(&read), std::mem::size_of_val(&append)];

        // Then each future is about the embedded store's, not a remote client's (3 KB unboxed)
        assert!(sizes.iter().all(|&s| s < 1_024), "futures of {sizes:?} bytes");
    }
}

//! A keyed command whose response was lost (the server crashed after the append) is retried by
//! the client a moment later: the retry decides again, at a new time, and must not take effect
//! a second time. Run on every backend that runs here.

mod common;

use common::list;
use ordo_domain::product::*;
use ordo_domain::Timestamp;
use ordo_eventstore::command::{CommandContext, Repository};
use ordo_eventstore::embedded::EmbeddedSubscription;
use ordo_eventstore::postgres::private::PrivatePostgres;
use ordo_eventstore::*;
use std::sync::Arc;
use uuid::Uuid;

fn receive(now: i64) -> ProductCommand {
    ProductCommand::ReceiveStock(ReceiveStock { quantity: 5, now: Timestamp(now) })
}

/// Given a listed product, when "receive 5" runs under a key, the server "crashes" (a new
/// repository with an empty cache stands for the restarted server), and the client retries
/// with the same key at a later time, then stock was received once.
async fn a_keyed_retry_after_a_lost_response_takes_effect_once<S: EventStore>(store: Arc<S>) {
    let keyed =
        CommandContext { idempotency_key: Some(Uuid::from_u128(7)), ..CommandContext::default() };
    let first = Repository::<Product, S>::new(store.clone(), 10);
    first.execute("MUG-1", &list("MUG-1"), &CommandContext::default()).await.expect("listed");
    first.execute("MUG-1", &receive(10), &keyed).await.expect("received");
    let restarted = Repository::<Product, S>::new(store.clone(), 10);
    let retry = restarted.execute("MUG-1", &receive(20), &keyed).await.expect("retry answered");
    assert!(retry.events.is_empty(), "the retry appended {:?}", retry.events);
    let on_hand = restarted.inspect("MUG-1", |_, s| s.on_hand).await.expect("state");
    assert_eq!(on_hand, 5, "received once");
    let stream = StreamName::new("product-MUG-1").expect("stream");
    assert_eq!(store.stream_version(&stream).await.expect("version"), Some(1));
}

#[tokio::test]
async fn on_the_embedded_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("e.redb"))).expect("open");
    a_keyed_retry_after_a_lost_response_takes_effect_once(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql() {
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    let config = PostgresConfig::from_url(&cluster.url()).expect("url");
    let store = PostgresStore::open(config).await.expect("open");
    a_keyed_retry_after_a_lost_response_takes_effect_once(Arc::new(store)).await;
}

/// KurrentDB's documented behaviour, which no server here can show: a resend whose expected
/// version is the stream's current one is appended again, even with ids already in the stream
/// (the server compares ids only for an expected version older than the stream's). This store
/// does exactly that over an embedded file, by storing each event under a fresh id and
/// answering reads with the id it was sent.
struct AcceptsReusedIds {
    inner: EmbeddedStore,
    sent_ids: std::sync::Mutex<std::collections::HashMap<Uuid, Uuid>>,
}

impl AcceptsReusedIds {
    fn restore(&self, mut events: Vec<RecordedEvent>) -> Vec<RecordedEvent> {
        let sent = self.sent_ids.lock().expect("lock");
        for e in &mut events {
            e.id = sent.get(&e.id).copied().unwrap_or(e.id);
        }
        events
    }
}

impl EventStore for AcceptsReusedIds {
    type Subscription = EmbeddedSubscription;

    async fn append(
        &self,
        stream: &StreamName,
        expected: ExpectedVersion,
        mut events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        {
            let mut sent = self.sent_ids.lock().expect("lock");
            for e in &mut events {
                let stored = Uuid::now_v7();
                sent.insert(stored, e.id);
                e.id = stored;
            }
        }
        self.inner.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamName,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.restore(self.inner.read_stream(stream, from, direction, limit).await?))
    }

    async fn read_all(
        &self,
        from: SubscribeFrom,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self.restore(self.inner.read_all(from, limit).await?))
    }

    async fn last_position(&self) -> Result<Option<Position>, StoreError> {
        self.inner.last_position().await
    }

    async fn stream_version(&self, stream: &StreamName) -> Result<Option<u64>, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn subscribe_all(
        &self,
        from: SubscribeFrom,
        filter: EventFilter,
    ) -> Result<EmbeddedSubscription, StoreError> {
        self.inner.subscribe_all(from, filter).await
    }

    fn refuses_reused_event_ids(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn on_a_store_that_accepts_a_reused_id_at_a_new_version_as_kurrentdb_does() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inner = EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("e.redb"))).expect("open");
    let store = AcceptsReusedIds { inner, sent_ids: Default::default() };
    a_keyed_retry_after_a_lost_response_takes_effect_once(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a KurrentDB server: set ORDO_KURRENTDB_URL and run `just test-kurrentdb`"]
async fn on_kurrentdb() {
    let url = std::env::var("ORDO_KURRENTDB_URL").expect("ORDO_KURRENTDB_URL names a server");
    // The stream is `product-MUG-1`: run it against a fresh server (or database).
    let store = ordo_eventstore::kurrent::KurrentStore::connect(&url).expect("connect");
    a_keyed_retry_after_a_lost_response_takes_effect_once(Arc::new(store)).await;
}

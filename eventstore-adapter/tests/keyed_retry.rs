//! A keyed command whose response was lost (the server crashed after the append) is retried by
//! the client a moment later: the retry decides again, at a new time, and must not take effect
//! a second time. Run on every backend that runs here.

use ordo_domain::product::*;
use ordo_domain::{Currency, Money, Sku, Timestamp};
use ordo_eventstore::command::{CommandContext, Repository};
use ordo_eventstore::postgres::private::PrivatePostgres;
use ordo_eventstore::*;
use std::sync::Arc;
use uuid::Uuid;

fn list() -> ProductCommand {
    ProductCommand::List(ListProduct {
        sku: Sku::parse("MUG-1").expect("valid"),
        name: "Mug".into(),
        description: String::new(),
        category: "kitchen".into(),
        brand: "Acme".into(),
        price: Money::new(1_000, Currency::EUR),
        image_urls: vec![],
        store_currency: Currency::EUR,
        now: Timestamp(0),
    })
}

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
    first.execute("MUG-1", &list(), &CommandContext::default()).await.expect("listed");
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

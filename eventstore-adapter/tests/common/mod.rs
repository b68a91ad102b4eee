//! The contract every `EventStore` backend must keep, written once and run per backend.
//!
//! Each check takes a store and a unique stream prefix, so it can run against a shared
//! KurrentDB server without seeing other tests' streams.

#![allow(dead_code, reason = "each test binary uses the part of the suite it needs")]

pub mod counting;

use ordo_eventstore::*;
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// Lists product `sku` (a mug at 10 EUR), the first command of every product test.
pub fn list(sku: &str) -> ordo_domain::product::ProductCommand {
    use ordo_domain::product::{ListProduct, ProductCommand};
    use ordo_domain::{Currency, Money, Sku, Timestamp};
    ProductCommand::List(ListProduct {
        sku: Sku::parse(sku).expect("valid"),
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

/// A fresh embedded store in a temporary directory (kept while the directory lives).
pub fn store() -> (tempfile::TempDir, std::sync::Arc<EmbeddedStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("events.redb"))).expect("open");
    (dir, std::sync::Arc::new(store))
}

/// `quantity` units received.
pub fn receive(quantity: u32) -> ordo_domain::product::ProductCommand {
    use ordo_domain::product::{ProductCommand, ReceiveStock};
    ProductCommand::ReceiveStock(ReceiveStock { quantity, now: ordo_domain::Timestamp(1) })
}

/// `quantity` units held for reservation `id`.
pub fn reserve(id: &str, quantity: u32) -> ordo_domain::product::ProductCommand {
    use ordo_domain::product::{ProductCommand, ReserveStock};
    use ordo_domain::{ReservationId, Timestamp};
    ProductCommand::Reserve(ReserveStock {
        reservation_id: ReservationId::parse(id).expect("valid"),
        quantity,
        expires_at: Timestamp(1_000_000),
        now: Timestamp(2),
    })
}

pub fn stream(prefix: &str, name: &str) -> StreamName {
    StreamName::new(format!("{prefix}{name}")).expect("valid test stream name")
}

pub fn unique_prefix() -> String {
    format!("t{}-", Uuid::now_v7().simple())
}

pub fn event(kind: &str, payload: &[u8]) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: kind.to_owned(),
        schema_version: 1,
        payload: payload.to_vec(),
        metadata: EventMetadata {
            correlation_id: Some(Uuid::from_u128(7)),
            causation_id: Some(Uuid::from_u128(8)),
            headers: BTreeMap::from([("actor".to_owned(), "test".to_owned())]),
        },
    }
}

pub fn events(n: usize) -> Vec<NewEvent> {
    (0..n).map(|i| event("Tested", format!("payload {i}").as_bytes())).collect()
}

/// Given a new stream, when three events are appended, they read back in order with
/// everything the store adds.
pub async fn appends_and_reads_back_in_order<S: EventStore>(store: &S, prefix: &str) {
    let s = stream(prefix, "order-1");
    let sent = events(3);
    let outcome = store.append(&s, ExpectedVersion::NoStream, sent.clone()).await.expect("append");
    assert_eq!((outcome.first_version, outcome.version), (0, 2));
    let read = store.read_stream(&s, 0, Direction::Forward, 100).await.expect("read");
    assert_eq!(read.iter().map(|e| e.version).collect::<Vec<_>>(), vec![0, 1, 2]);
    for (got, want) in read.iter().zip(&sent) {
        assert_eq!(
            (got.id, &got.event_type, &got.payload),
            (want.id, &want.event_type, &want.payload)
        );
        assert_eq!(got.metadata, want.metadata, "metadata survives the round trip");
        assert_eq!(got.stream, s);
        assert!(got.recorded_at > 1_700_000_000_000, "the store sets the recorded time");
    }
    assert_eq!(read[2].position, outcome.position, "the outcome names the last event's position");
    assert_eq!(store.stream_version(&s).await.expect("head"), Some(2));
    assert_eq!(store.stream_version(&stream(prefix, "none")).await.expect("head"), None);
}

/// Given a stream at version 2, appends with a wrong expectation fail and write nothing.
pub async fn rejects_wrong_expected_versions<S: EventStore>(store: &S, prefix: &str) {
    let s = stream(prefix, "cart-1");
    store.append(&s, ExpectedVersion::NoStream, events(3)).await.expect("append");
    for expected in
        [ExpectedVersion::NoStream, ExpectedVersion::Exact(1), ExpectedVersion::Exact(3)]
    {
        match store.append(&s, expected, events(1)).await {
            Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, Some(2)),
            other => panic!("expected WrongExpectedVersion for {expected}, got {other:?}"),
        }
    }
    let missing = stream(prefix, "cart-missing");
    match store.append(&missing, ExpectedVersion::StreamExists, events(1)).await {
        Err(StoreError::WrongExpectedVersion { actual: None, .. }) => {}
        other => panic!("expected WrongExpectedVersion on a missing stream, got {other:?}"),
    }
    let ok = store.append(&s, ExpectedVersion::Exact(2), events(1)).await.expect("right version");
    assert_eq!(ok.version, 3);
    store.append(&s, ExpectedVersion::StreamExists, events(1)).await.expect("exists");
    store.append(&s, ExpectedVersion::Any, events(1)).await.expect("any");
    assert_eq!(store.stream_version(&s).await.expect("head"), Some(5));
}

/// Given an append that succeeded, re-sending the same events returns the first outcome and
/// writes nothing, even after other writes; the same id with another payload is refused.
pub async fn retries_are_idempotent<S: EventStore>(store: &S, prefix: &str) {
    let s = stream(prefix, "product-1");
    let batch = events(2);
    let first = store.append(&s, ExpectedVersion::NoStream, batch.clone()).await.expect("append");
    store.append(&s, ExpectedVersion::Exact(1), events(3)).await.expect("later write");
    let retry = store.append(&s, ExpectedVersion::NoStream, batch.clone()).await.expect("retry");
    assert_eq!((retry.first_version, retry.version), (first.first_version, first.version));
    assert_eq!(retry.position, first.position);
    assert_eq!(store.stream_version(&s).await.expect("head"), Some(4), "the retry wrote nothing");
}

/// The same event id with a different payload is refused, not mistaken for a retry.
/// (The embedded store checks this; KurrentDB deduplicates by id only, a documented limit.)
pub async fn a_reused_id_with_another_payload_is_refused<S: EventStore>(store: &S, prefix: &str) {
    let s = stream(prefix, "product-2");
    let batch = events(1);
    store.append(&s, ExpectedVersion::NoStream, batch.clone()).await.expect("append");
    let mut tampered = batch[0].clone();
    tampered.payload = b"something else".to_vec();
    match store.append(&s, ExpectedVersion::Any, vec![tampered]).await {
        Err(StoreError::EventIdConflict { id, .. }) => assert_eq!(id, batch[0].id),
        other => panic!("expected EventIdConflict, got {other:?}"),
    }
}

/// Reads honour direction, start and limit.
pub async fn reads_forward_and_backward_with_limits<S: EventStore>(store: &S, prefix: &str) {
    let s = stream(prefix, "order-2");
    store.append(&s, ExpectedVersion::NoStream, events(10)).await.expect("append");
    let versions = |v: Vec<RecordedEvent>| v.into_iter().map(|e| e.version).collect::<Vec<_>>();
    assert_eq!(
        versions(store.read_stream(&s, 3, Direction::Forward, 4).await.expect("read")),
        vec![3, 4, 5, 6]
    );
    assert_eq!(
        versions(store.read_stream(&s, u64::MAX, Direction::Backward, 3).await.expect("read")),
        vec![9, 8, 7]
    );
    assert_eq!(
        versions(store.read_stream(&s, 1, Direction::Backward, 10).await.expect("read")),
        vec![1, 0]
    );
    assert!(store.read_stream(&s, 10, Direction::Forward, 10).await.expect("read").is_empty());
    assert!(store
        .read_stream(&stream(prefix, "nothing"), 0, Direction::Forward, 10)
        .await
        .expect("read")
        .is_empty());
}

/// Events of one append are contiguous in the global log, and positions only grow.
pub async fn global_log_is_ordered_and_appends_contiguous<S: EventStore>(store: &S, prefix: &str) {
    let a = stream(prefix, "a");
    let b = stream(prefix, "b");
    // Positions are opaque (byte offsets on KurrentDB): start after the log's last position
    // as it was before these appends, never at "first position - 1".
    let before = match store.last_position().await.expect("head") {
        Some(p) => SubscribeFrom::After(p),
        None => SubscribeFrom::Start,
    };
    let out_a = store.append(&a, ExpectedVersion::Any, events(3)).await.expect("append a");
    store.append(&b, ExpectedVersion::Any, events(2)).await.expect("append b");
    let all: Vec<_> = store
        .read_all(before, 10_000)
        .await
        .expect("read all")
        .into_iter()
        .filter(|e| e.stream.as_str().starts_with(prefix))
        .collect();
    let streams: Vec<_> = all.iter().map(|e| e.stream.as_str().to_owned()).collect();
    assert_eq!(
        streams,
        vec![a.to_string(), a.to_string(), a.to_string(), b.to_string(), b.to_string()]
    );
    assert!(all.windows(2).all(|w| w[0].position < w[1].position), "positions strictly grow");
    assert_eq!(all[2].position, out_a.position);
}

/// Given history in the log, a subscription from the start delivers it all and then every
/// event appended concurrently by several writers: no gap, no duplicate, stream order kept.
pub async fn subscription_catches_up_then_follows_live<S: EventStore>(
    store: std::sync::Arc<S>,
    prefix: &str,
) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 150;
    let history = stream(prefix, "history");
    store.append(&history, ExpectedVersion::Any, events(200)).await.expect("history");
    let mut sub = store
        .subscribe_all(SubscribeFrom::Start, EventFilter::streams_starting_with([prefix]))
        .await
        .expect("subscribe");
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let s = stream(prefix, &format!("live-{w}"));
        writers.push(tokio::spawn(async move {
            for _ in 0..PER_WRITER {
                store.append(&s, ExpectedVersion::Any, events(1)).await.expect("live append");
            }
        }));
    }
    let total = 200 + WRITERS * PER_WRITER;
    let mut seen = HashSet::new();
    let mut last_version: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_position = None;
    while seen.len() < total {
        let e = tokio::time::timeout(std::time::Duration::from_secs(20), sub.next())
            .await
            .expect("subscription keeps delivering")
            .expect("event");
        assert!(seen.insert(e.id), "duplicate delivery of {}", e.id);
        if let Some(prev) = last_version.insert(e.stream.to_string(), e.version) {
            assert_eq!(e.version, prev + 1, "gap or reorder in {}", e.stream);
        }
        assert!(last_position < Some(e.position), "positions strictly grow");
        last_position = Some(e.position);
    }
    for w in writers {
        w.await.expect("writer finished");
    }
    let extra = tokio::time::timeout(std::time::Duration::from_millis(200), sub.next()).await;
    assert!(extra.is_err(), "nothing beyond what was written: {extra:?}");
}

/// A subscription from a checkpoint starts right after it.
pub async fn subscription_resumes_after_a_checkpoint<S: EventStore>(store: &S, prefix: &str) {
    let s = stream(prefix, "resume");
    store.append(&s, ExpectedVersion::Any, events(5)).await.expect("append");
    let read = store.read_stream(&s, 0, Direction::Forward, 5).await.expect("read");
    let mut sub = store
        .subscribe_all(
            SubscribeFrom::After(read[2].position),
            EventFilter::streams_starting_with([prefix]),
        )
        .await
        .expect("subscribe");
    let next = sub.next().await.expect("event");
    assert_eq!((next.stream.clone(), next.version), (s.clone(), 3));
    assert_eq!(sub.next().await.expect("event").version, 4);
}

/// Given a log where a subscriber's streams are far apart (more than a page of others
/// between them, then interleaved), a filtered subscription delivers exactly its streams'
/// events, whole (headers, payload), in order, and none of the others.
pub async fn a_filtered_subscription_delivers_only_its_streams<S: EventStore>(
    store: &S,
    prefix: &str,
) {
    let (kept, other) = (stream(prefix, "cart-1"), stream(prefix, "product-1"));
    store.append(&kept, ExpectedVersion::Any, events(1)).await.expect("first");
    store.append(&other, ExpectedVersion::Any, events(2_500)).await.expect("a long gap");
    for _ in 0..3 {
        store.append(&other, ExpectedVersion::Any, events(1)).await.expect("between");
        store.append(&kept, ExpectedVersion::Any, events(2)).await.expect("kept");
    }
    let filter = EventFilter::streams_starting_with([format!("{prefix}cart-")]);
    let mut sub = store.subscribe_all(SubscribeFrom::Start, filter).await.expect("subscribe");
    let mut versions = Vec::new();
    while versions.len() < 7 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
            .await
            .expect("the subscription reaches the kept events")
            .expect("event");
        assert_eq!(e.stream, kept, "only the filter's streams");
        let sent = events(1).remove(0);
        assert_eq!((e.event_type.as_str(), &e.metadata), ("Tested", &sent.metadata), "whole");
        assert!(e.payload.starts_with(b"payload "), "{:?}", e.payload);
        versions.push(e.version);
    }
    assert_eq!(versions, (0..7).collect::<Vec<u64>>());
    let extra = tokio::time::timeout(std::time::Duration::from_millis(200), sub.next()).await;
    assert!(extra.is_err(), "nothing of the other stream: {extra:?}");
}

/// Where the store says how far a feed read: a filtered feed's batch fills across pages of
/// dropped events, and after the last one it has read to the end of the log.
pub async fn a_filtered_subscription_fills_its_batch_and_says_how_far_it_read<S: EventStore>(
    store: &S,
    prefix: &str,
) {
    assert!(store.reports_read_through(), "a case for the stores that report it");
    // Given 750 events kept and 750 dropped, in turns of 50, the log ending with dropped ones
    let (kept, other) = (stream(prefix, "cart-2"), stream(prefix, "product-2"));
    for _ in 0..15 {
        store.append(&kept, ExpectedVersion::Any, events(50)).await.expect("kept");
        store.append(&other, ExpectedVersion::Any, events(50)).await.expect("dropped");
    }
    let head = store.last_position().await.expect("head");
    // When a feed of the kept streams takes a batch of up to 1,000
    let filter = EventFilter::streams_starting_with([format!("{prefix}cart-")]);
    let mut sub = store.subscribe_all(SubscribeFrom::Start, filter).await.expect("subscribe");
    let batch = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next_batch(1_000))
        .await
        .expect("a batch")
        .expect("events");
    // Then it holds every kept event (a first page holds about half), and the feed read to the end
    assert_eq!(batch.len(), 750);
    assert!(batch.iter().all(|e| e.stream == kept), "only the filter's streams");
    assert_eq!(sub.read_through(), head);
}

/// Given a product at version 0 and a new cart, when a hold on the product and the cart's line
/// are appended together, both land, each contiguous, the product's part first, and a reader
/// of the log sees them one after the other.
pub async fn appends_to_several_streams_commit_together<S: EventStore>(store: &S, prefix: &str) {
    let (product, cart) = (stream(prefix, "product-T"), stream(prefix, "cart-T"));
    store.append(&product, ExpectedVersion::NoStream, events(1)).await.expect("listed");
    let before = store.last_position().await.expect("head").expect("one event");
    let outcomes = store
        .append_together(vec![
            StreamAppend {
                stream: product.clone(),
                expected: ExpectedVersion::Exact(0),
                events: events(2),
            },
            StreamAppend {
                stream: cart.clone(),
                expected: ExpectedVersion::NoStream,
                events: events(1),
            },
        ])
        .await
        .expect("append together");
    assert_eq!(outcomes.len(), 2);
    assert_eq!((outcomes[0].first_version, outcomes[0].version), (1, 2));
    assert_eq!((outcomes[1].first_version, outcomes[1].version), (0, 0));
    assert!(outcomes[0].position < outcomes[1].position, "parts land in the order given");
    let log = store.read_all(SubscribeFrom::After(before), 10).await.expect("read log");
    let order: Vec<(&str, u64)> = log.iter().map(|e| (e.stream.as_str(), e.version)).collect();
    let (p, c) = (product.as_str(), cart.as_str());
    assert_eq!(order, [(p, 1), (p, 2), (c, 0)]);
    assert_eq!(log[2].position, outcomes[1].position);
}

/// Given a cart that moved on, when a hold and a line expecting the old cart are appended
/// together, the whole append is refused with the cart's conflict and the product gets
/// nothing either; an append naming a stream twice is refused before it is queued.
pub async fn a_refused_part_refuses_the_whole_append<S: EventStore>(store: &S, prefix: &str) {
    let (product, cart) = (stream(prefix, "product-R"), stream(prefix, "cart-R"));
    store.append(&product, ExpectedVersion::NoStream, events(1)).await.expect("listed");
    store.append(&cart, ExpectedVersion::NoStream, events(2)).await.expect("cart moved on");
    let head = store.last_position().await.expect("head");
    let stale = vec![
        StreamAppend {
            stream: product.clone(),
            expected: ExpectedVersion::Exact(0),
            events: events(1),
        },
        StreamAppend {
            stream: cart.clone(),
            expected: ExpectedVersion::Exact(0),
            events: events(1),
        },
    ];
    match store.append_together(stale).await {
        Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
            assert_eq!((stream.as_str(), actual), (cart.as_str(), Some(1)));
        }
        other => panic!("expected the cart's WrongExpectedVersion, got {other:?}"),
    }
    assert_eq!(store.stream_version(&product).await.expect("version"), Some(0), "no hold");
    assert_eq!(store.last_position().await.expect("head"), head, "nothing written");
    let twice = vec![
        StreamAppend { stream: cart.clone(), expected: ExpectedVersion::Any, events: events(1) },
        StreamAppend { stream: cart.clone(), expected: ExpectedVersion::Any, events: events(1) },
    ];
    assert!(matches!(store.append_together(twice).await, Err(StoreError::StreamTwice(_))));
}

/// Given an append to two streams that committed, when it is sent again (its answer was
/// lost), the first outcomes come back and nothing is written; a resend of which only one
/// part is stored is no retry, and is refused.
pub async fn a_resent_append_to_several_streams_is_answered_as_before<S: EventStore>(
    store: &S,
    prefix: &str,
) {
    let (product, cart) = (stream(prefix, "product-S"), stream(prefix, "cart-S"));
    let parts = vec![
        StreamAppend {
            stream: product.clone(),
            expected: ExpectedVersion::NoStream,
            events: events(1),
        },
        StreamAppend {
            stream: cart.clone(),
            expected: ExpectedVersion::NoStream,
            events: events(1),
        },
    ];
    let first = store.append_together(parts.clone()).await.expect("first");
    let head = store.last_position().await.expect("head");
    let again = store.append_together(parts.clone()).await.expect("resent");
    assert_eq!(again, first);
    assert_eq!(store.last_position().await.expect("head"), head, "the resend wrote nothing");
    let mut half = parts;
    half[1].events = events(1);
    half[1].expected = ExpectedVersion::Exact(0);
    assert!(matches!(store.append_together(half).await, Err(StoreError::EventIdConflict { .. })));
    assert_eq!(store.last_position().await.expect("head"), head, "nothing written");
}

//! The write path: decide, append, cache, and retry when another process wrote first.

mod common;

use common::counting::CountingStore;
use common::{list, receive, reserve, store};
use ordo_domain::product::*;
use ordo_domain::{ReservationId, Timestamp};
use ordo_eventstore::command::{CommandContext, CommandError, Repository};
use ordo_eventstore::*;
use std::sync::Arc;
use uuid::Uuid;

type Products = Repository<Product, EmbeddedStore>;

async fn on_hand(repo: &Products, sku: &str) -> (Option<u64>, i64) {
    repo.inspect(sku, |v, s| (v, s.on_hand)).await.expect("inspect")
}

#[tokio::test]
async fn a_command_appends_its_events_and_answers_with_a_receipt() {
    let (_dir, store) = store();
    let repo = Products::new(store.clone(), 100);
    let receipt =
        repo.execute("MUG-1", &list("MUG-1"), &CommandContext::default()).await.expect("listed");
    assert_eq!(
        (receipt.stream.as_str(), receipt.version, receipt.events.len()),
        ("product-MUG-1", Some(0), 1)
    );
    let receipt =
        repo.execute("MUG-1", &receive(5), &CommandContext::default()).await.expect("received");
    assert_eq!(receipt.version, Some(1));
    assert_eq!(receipt.position, Some(Position(1)));
    assert_eq!(store.stream_version(&receipt.stream).await.expect("head"), Some(1));
}

#[tokio::test]
async fn a_broken_rule_is_a_domain_error_and_writes_nothing() {
    let (_dir, store) = store();
    let repo = Products::new(store.clone(), 100);
    match repo.execute("MUG-1", &receive(5), &CommandContext::default()).await {
        Err(CommandError::Domain(ProductError::NotListed)) => {}
        other => panic!("expected NotListed, got {other:?}"),
    }
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_satisfied_command_appends_nothing() {
    let (_dir, store) = store();
    let repo = Products::new(store.clone(), 100);
    repo.execute("MUG-1", &list("MUG-1"), &CommandContext::default()).await.expect("listed");
    let delist = ProductCommand::Delist(DelistProduct { now: Timestamp(3) });
    repo.execute("MUG-1", &delist, &CommandContext::default()).await.expect("delisted");
    let again = repo.execute("MUG-1", &delist, &CommandContext::default()).await.expect("no-op");
    assert!(again.events.is_empty() && again.position.is_none());
    assert_eq!(store.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_on_one_hot_stream_all_apply_in_order() {
    let (_dir, store) = store();
    let repo = Arc::new(Products::new(store.clone(), 100));
    repo.execute("HOT-1", &list("HOT-1"), &CommandContext::default()).await.expect("listed");
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                repo.execute("HOT-1", &receive(1), &CommandContext::default()).await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("command applied");
    }
    assert_eq!(on_hand(&repo, "HOT-1").await, (Some(64), 64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_units_are_sold_exactly_once_even_across_two_processes() {
    let (_dir, store) = store();
    // Two repositories on one store behave like two server processes: separate caches and locks.
    let a = Arc::new(Products::new(store.clone(), 100));
    let b = Arc::new(Products::new(store.clone(), 100));
    a.execute("LAST-1", &list("LAST-1"), &CommandContext::default()).await.expect("listed");
    a.execute("LAST-1", &receive(5), &CommandContext::default()).await.expect("stocked");
    b.inspect("LAST-1", |_, _| ()).await.expect("b caches the product too");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let repo = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                repo.execute(
                    "LAST-1",
                    &reserve(&format!("cart-{i}"), 1),
                    &CommandContext::default(),
                )
                .await
            })
        })
        .collect();
    let mut sold = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => sold += 1,
            Err(CommandError::Domain(ProductError::InsufficientStock { .. })) => {}
            Err(other) => panic!("unexpected failure {other:?}"),
        }
    }
    assert_eq!(sold, 5, "exactly the five units on hand were reserved");
}

#[tokio::test]
async fn a_stale_cache_catches_up_after_a_conflict_instead_of_failing() {
    let (_dir, store) = store();
    let a = Products::new(store.clone(), 100);
    let b = Products::new(store.clone(), 100);
    a.execute("MUG-1", &list("MUG-1"), &CommandContext::default()).await.expect("listed");
    a.inspect("MUG-1", |_, _| ()).await.expect("cached in a");
    b.execute("MUG-1", &receive(3), &CommandContext::default())
        .await
        .expect("b writes behind a's back");
    a.execute("MUG-1", &receive(2), &CommandContext::default())
        .await
        .expect("a retries after the conflict");
    assert_eq!(on_hand(&a, "MUG-1").await, (Some(2), 5));
}

#[tokio::test]
async fn a_resent_command_with_the_same_idempotency_key_takes_effect_once() {
    let (_dir, store) = store();
    let repo = Products::new(store.clone(), 100);
    repo.execute("MUG-1", &list("MUG-1"), &CommandContext::default()).await.expect("listed");
    let context =
        CommandContext { idempotency_key: Some(Uuid::now_v7()), ..CommandContext::default() };
    let first = repo.execute("MUG-1", &receive(4), &context).await.expect("first");
    let again = repo.execute("MUG-1", &receive(4), &context).await.expect("resent");
    assert_eq!(again.position, first.position, "the store answered with the first append");
    assert_eq!(on_hand(&repo, "MUG-1").await, (Some(1), 4));
    let fresh = Products::new(store.clone(), 100);
    assert_eq!(on_hand(&fresh, "MUG-1").await, (Some(1), 4), "nothing was stored twice");
}

#[tokio::test]
async fn a_tiny_cache_still_gives_correct_answers() {
    let (_dir, store) = store();
    let repo = Products::new(store.clone(), 1);
    for sku in ["AAA-1", "BBB-1", "CCC-1"] {
        repo.execute(sku, &list(sku), &CommandContext::default()).await.expect("listed");
        repo.execute(sku, &receive(2), &CommandContext::default()).await.expect("stocked");
    }
    for sku in ["AAA-1", "BBB-1", "CCC-1"] {
        repo.execute(sku, &receive(1), &CommandContext::default())
            .await
            .expect("evicted, reloaded");
        assert_eq!(on_hand(&repo, sku).await, (Some(2), 3));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_on_one_product_is_decided_together_and_each_hears_its_own_outcome() {
    // Given a product with 40 units, on a store that counts its appends
    let (_dir, embedded) = store();
    let counting = Arc::new(CountingStore::new(embedded, true));
    let repo = Arc::new(Repository::<Product, _>::new(counting.clone(), 100));
    repo.execute("HOT-1", &list("HOT-1"), &CommandContext::default()).await.expect("listed");
    repo.execute("HOT-1", &receive(40), &CommandContext::default()).await.expect("stocked");
    let before = counting.appends();
    // When 64 shoppers reserve one unit each at once
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let cart = format!("cart-{i}");
                (
                    cart.clone(),
                    repo.execute("HOT-1", &reserve(&cart, 1), &CommandContext::default()).await,
                )
            })
        })
        .collect();
    let mut receipts = Vec::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            (cart, Ok(receipt)) => receipts.push((cart, receipt)),
            (_, Err(CommandError::Domain(ProductError::InsufficientStock { .. }))) => refused += 1,
            (_, Err(other)) => panic!("unexpected failure {other:?}"),
        }
    }
    // Then exactly the 40 units are held, the rest refused on their own,
    assert_eq!((receipts.len(), refused), (40, 24));
    // in far fewer commits than commands,
    let appends = counting.appends() - before;
    assert!(appends < 16, "{appends} appends for 64 commands");
    // and each receipt names its own event: its version and position hold its reservation
    let stream = StreamName::new("product-HOT-1".to_owned()).expect("name");
    let events = counting.read_stream(&stream, 0, Direction::Forward, 1_000).await.expect("read");
    for (cart, receipt) in &receipts {
        let version = receipt.version.expect("version");
        let event = &events[version as usize];
        assert_eq!(Some(event.position), receipt.position, "{cart}");
        match <ProductEvent as ordo_eventstore::codec::DomainEvent>::from_recorded(event)
            .expect("decodes")
        {
            ProductEvent::StockReserved(e) => assert_eq!(e.reservation_id.as_str(), cart),
            other => panic!("{cart}: version {version} is {other:?}"),
        }
    }
    let held = repo.inspect("HOT-1", |_, s| s.reservations.len()).await.expect("inspect");
    assert_eq!(held, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_does_not_wait_for_a_commit_in_flight_and_sees_it_once_answered() {
    // Given a product with 5 units, on a store whose next commit is held in flight
    let (_dir, embedded) = store();
    let gated = Arc::new(CountingStore::new(embedded, false));
    let repo = Arc::new(Repository::<Product, _>::new(gated.clone(), 100));
    gated.gate.add_permits(2);
    repo.execute("MUG-1", &list("MUG-1"), &CommandContext::default()).await.expect("listed");
    repo.execute("MUG-1", &receive(5), &CommandContext::default()).await.expect("stocked");
    let available = |repo: Arc<Repository<Product, CountingStore>>| async move {
        repo.inspect("MUG-1", |v, s| (v, s.available(Timestamp(3)))).await.expect("inspect")
    };
    assert_eq!(available(repo.clone()).await, (Some(1), 5));
    let reserving = {
        let repo = repo.clone();
        tokio::spawn(async move {
            repo.execute("MUG-1", &reserve("cart-1", 2), &CommandContext::default()).await
        })
    };
    while gated.appends() < 3 {
        tokio::task::yield_now().await;
    }
    // When the product is read while its reservation's commit is held
    let during = tokio::time::timeout(std::time::Duration::from_secs(5), available(repo.clone()))
        .await
        .expect("the read did not wait for the commit");
    // Then it answers at once with the state of the last commit,
    assert_eq!(during, (Some(1), 5));
    // and once the reservation's caller has its receipt, every read includes it
    gated.gate.add_permits(1);
    let receipt = reserving.await.expect("task").expect("reserved");
    assert_eq!(receipt.version, Some(2));
    assert_eq!(available(repo.clone()).await, (Some(2), 3));
}

#[tokio::test]
async fn a_keyed_command_retried_after_its_step_was_taken_is_answered_not_refused() {
    // Given a hold released by a keyed request whose answer was lost
    let (_dir, store) = store();
    let repo = Products::new(store.clone(), 100);
    repo.execute("MUG-1", &list("MUG-1"), &CommandContext::default()).await.expect("listed");
    repo.execute("MUG-1", &receive(3), &CommandContext::default()).await.expect("stocked");
    repo.execute("MUG-1", &reserve("cart-1", 1), &CommandContext::default()).await.expect("held");
    let release = ProductCommand::Release(ReleaseReservation {
        reservation_id: ReservationId::parse("cart-1").expect("valid"),
        now: Timestamp(3),
    });
    let keyed =
        CommandContext { idempotency_key: Some(Uuid::now_v7()), ..CommandContext::default() };
    let first = repo.execute("MUG-1", &release, &keyed).await.expect("released");
    // When the same request is retried, here and on a server that loads the stream afresh
    let again = repo.execute("MUG-1", &release, &keyed).await;
    let elsewhere = Products::new(store.clone(), 100).execute("MUG-1", &release, &keyed).await;
    // Then both are answered as done, appending nothing
    for answer in [again, elsewhere] {
        let answer = answer.expect("the retry is answered, not refused");
        assert!(answer.events.is_empty());
        assert_eq!(answer.version, first.version);
    }
    // while the same command under no key is refused: there is no such hold
    let fresh = repo.execute("MUG-1", &release, &CommandContext::default()).await;
    let refused = matches!(fresh, Err(CommandError::Domain(ProductError::UnknownReservation(_))));
    assert!(refused, "{fresh:?}");
    assert_eq!(store.len(), 4, "nothing appended by the retries");
}

//! What several servers share in the PostgreSQL store's database (ADR 0012): role leases with
//! their fencing epochs, the process state a new holder continues from, and
//! `Idempotency-Key` records claimed by one request at a time.

mod common;

use ordo_eventstore::postgres::private::PrivatePostgres;
use ordo_eventstore::postgres::shared::RequestClaim;
use ordo_eventstore::*;
use std::collections::HashMap;
use std::time::Duration;

async fn open(cluster: &PrivatePostgres, schema: &str) -> PostgresStore {
    let url = format!("{}?schema={schema}", cluster.url());
    PostgresStore::open(PostgresConfig::from_url(&url).expect("url")).await.expect("open store")
}

/// A lease's lifetime in these tests. "Still live" is checked a fraction of it after a call:
/// long enough that a stall of a loaded CI machine between two calls does not lapse it.
const TTL: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_fence_process_state_and_claim_requests_on_postgresql() {
    let cluster = PrivatePostgres::start().expect("private PostgreSQL");
    a_live_lease_is_not_taken_and_a_lapsed_one_is_taken_with_a_higher_epoch(&cluster).await;
    a_holder_whose_lease_was_taken_over_cannot_save_or_renew(&cluster).await;
    a_released_lease_is_free_at_once(&cluster).await;
    a_new_holder_continues_from_the_saved_state(&cluster).await;
    a_key_is_run_once_and_then_replayed(&cluster).await;
    a_claim_whose_request_died_lapses(&cluster).await;
    a_refusal_is_never_decided_on_another_servers_old_state(&cluster).await;
    a_companion_another_server_moved_is_refused_with_its_command(&cluster).await;
}

async fn a_live_lease_is_not_taken_and_a_lapsed_one_is_taken_with_a_higher_epoch(
    cluster: &PrivatePostgres,
) {
    // Given a lease held by one instance
    let store = open(cluster, "takeover").await;
    let first = store.try_acquire("checkout", "a", TTL).await.expect("acquire");
    assert_eq!(first, Some(1));
    // When another asks while it is live, then it is refused
    assert_eq!(store.try_acquire("checkout", "b", TTL).await.expect("acquire"), None);
    // and a renewal keeps it live past its first lifetime
    tokio::time::sleep(TTL / 2).await;
    assert!(store.renew("checkout", "a", 1, TTL).await.expect("renew"));
    // (past the first lifetime's end, 0.4 of one before the renewed one's)
    tokio::time::sleep(TTL * 3 / 5).await;
    assert_eq!(store.try_acquire("checkout", "b", TTL).await.expect("acquire"), None);
    // When it lapses, then the other takes it, one epoch higher
    tokio::time::sleep(TTL).await;
    assert_eq!(store.try_acquire("checkout", "b", TTL).await.expect("acquire"), Some(2));
    let rows = store.leases().await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].holder.as_str(), rows[0].epoch), ("b", 2));
    assert!(rows[0].expires_at_ms > rows[0].now_ms, "live: {rows:?}");
}

async fn a_holder_whose_lease_was_taken_over_cannot_save_or_renew(cluster: &PrivatePostgres) {
    // Given a holder at epoch 1 whose lease lapsed and was taken over
    let store = open(cluster, "fencing").await;
    assert_eq!(store.try_acquire("checkout", "a", TTL).await.expect("acquire"), Some(1));
    store
        .save_process_state("checkout", Some(("checkout", 1)), 10, &HashMap::new())
        .await
        .expect("saved");
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    assert_eq!(store.try_acquire("checkout", "b", TTL).await.expect("acquire"), Some(2));
    // When the old holder saves, then it is fenced and nothing moves
    let due = HashMap::from([("cart-1".to_owned(), Some(5))]);
    let saved = store.save_process_state("checkout", Some(("checkout", 1)), 20, &due).await;
    assert!(matches!(saved, Err(StoreError::Fenced { epoch: 1, .. })), "{saved:?}");
    assert_eq!(store.process_checkpoint("checkout").await.expect("read"), Some(10));
    assert!(store.carts_due().await.expect("read").is_empty());
    // and it cannot renew either
    assert!(!store.renew("checkout", "a", 1, TTL).await.expect("renew"));
    // while the new holder saves
    store.save_process_state("checkout", Some(("checkout", 2)), 20, &due).await.expect("saved");
    assert_eq!(store.process_checkpoint("checkout").await.expect("read"), Some(20));
}

async fn a_released_lease_is_free_at_once(cluster: &PrivatePostgres) {
    // Given a lease with a long life
    let store = open(cluster, "release").await;
    let long = Duration::from_secs(60);
    assert_eq!(store.try_acquire("outbox", "a", long).await.expect("acquire"), Some(1));
    // When its holder releases it (shutting down), then another takes it without waiting
    store.release("outbox", "a", 1).await.expect("release");
    assert_eq!(store.try_acquire("outbox", "b", long).await.expect("acquire"), Some(2));
    // and a stale release by the old holder does not free the new holder's lease
    store.release("outbox", "a", 1).await.expect("release");
    assert_eq!(store.try_acquire("outbox", "c", long).await.expect("acquire"), None);
}

async fn a_new_holder_continues_from_the_saved_state(cluster: &PrivatePostgres) {
    // Given state saved by one holder: a checkpoint, two carts due, then one no longer due
    let store = open(cluster, "continue").await;
    assert_eq!(store.try_acquire("checkout", "a", TTL).await.expect("acquire"), Some(1));
    let fence = Some(("checkout", 1));
    let due = HashMap::from([("c1".to_owned(), Some(100)), ("c2".to_owned(), Some(200))]);
    store.save_process_state("checkout", fence, 7, &due).await.expect("saved");
    let due = HashMap::from([("c1".to_owned(), None), ("c2".to_owned(), Some(250))]);
    store.save_process_state("checkout", fence, 9, &due).await.expect("saved");
    // When another server opens the same database, then it reads exactly that state
    let other = open(cluster, "continue").await;
    assert_eq!(other.process_checkpoint("checkout").await.expect("read"), Some(9));
    let due = other.carts_due().await.expect("read");
    assert_eq!(due.into_iter().collect::<Vec<_>>(), vec![("c2".to_owned(), 250)]);
}

async fn a_key_is_run_once_and_then_replayed(cluster: &PrivatePostgres) {
    let store = open(cluster, "requests").await;
    let (record, print) = (b"record-1".as_slice(), b"print-1".as_slice());
    let hold = Duration::from_secs(60);
    // Given a request claimed on one server
    let first = store.claim_request(record, print, "a/1", hold, 1_000).await.expect("claim");
    assert_eq!(first, RequestClaim::Claimed);
    // When the same key arrives on another server meanwhile, then it is in progress
    let second = store.claim_request(record, print, "b/1", hold, 1_001).await.expect("claim");
    assert_eq!(second, RequestClaim::InProgress);
    // When the first finishes, then a retry anywhere gets its response and fingerprint
    store.finish_request(record, "a/1", b"response").await.expect("finish");
    let retry = store.claim_request(record, print, "b/2", hold, 1_002).await.expect("claim");
    assert_eq!(
        retry,
        RequestClaim::Done { fingerprint: print.to_vec(), response: b"response".to_vec() }
    );
    // and an abandoned claim (a refused request) frees the key at once
    let other = b"record-2".as_slice();
    assert_eq!(
        store.claim_request(other, print, "a/2", hold, 1_003).await.expect("claim"),
        RequestClaim::Claimed
    );
    store.abandon_request(other, "a/2").await.expect("abandon");
    assert_eq!(
        store.claim_request(other, print, "b/3", hold, 1_004).await.expect("claim"),
        RequestClaim::Claimed
    );
    // and records past their retention are purged
    assert_eq!(store.purge_requests(1_004).await.expect("purge"), 1);
}

async fn a_claim_whose_request_died_lapses(cluster: &PrivatePostgres) {
    // Given a claim whose server died before answering
    let store = open(cluster, "lapse").await;
    let (record, print) = (b"record".as_slice(), b"print".as_slice());
    let hold = Duration::from_secs(60);
    assert_eq!(
        store.claim_request(record, print, "dead/1", hold, 0).await.expect("claim"),
        RequestClaim::Claimed
    );
    // When the key comes back within the claim, it is in progress; after it, it runs again
    let within = store.claim_request(record, print, "b/1", hold, 59_000).await.expect("claim");
    assert_eq!(within, RequestClaim::InProgress);
    let after = store.claim_request(record, print, "b/2", hold, 60_001).await.expect("claim");
    assert_eq!(after, RequestClaim::Claimed);
    // and the dead server's late answer does not overwrite the new claimant's
    store.finish_request(record, "dead/1", b"late").await.expect("finish");
    store.finish_request(record, "b/2", b"fresh").await.expect("finish");
    let done = store.claim_request(record, print, "c/1", hold, 60_002).await.expect("claim");
    assert_eq!(
        done,
        RequestClaim::Done { fingerprint: print.to_vec(), response: b"fresh".to_vec() }
    );
}

async fn a_refusal_is_never_decided_on_another_servers_old_state(cluster: &PrivatePostgres) {
    use ordo_domain::product::*;
    use ordo_domain::{ReservationId, Timestamp};
    use ordo_eventstore::command::{CommandContext, Repository};
    // Given two servers on one store, and a product the first has cached with no stock
    let store = std::sync::Arc::new(open(cluster, "stale").await);
    let first = Repository::<Product, _>::new(store.clone(), 100);
    let second = Repository::<Product, _>::new(store.clone(), 100);
    let none = CommandContext::default();
    first.execute("MUG-1", &common::list("MUG-1"), &none).await.expect("listed");
    // When the second server receives stock, and then the first is asked to hold a unit
    let receive = ProductCommand::ReceiveStock(ReceiveStock { quantity: 5, now: Timestamp(1) });
    second.execute("MUG-1", &receive, &none).await.expect("stocked elsewhere");
    let hold = ProductCommand::Reserve(ReserveStock {
        reservation_id: ReservationId::parse("cart-1").expect("id"),
        quantity: 1,
        expires_at: Timestamp(1_000_000),
        now: Timestamp(2),
    });
    // Then it holds it: its cached "no stock" was checked against the store before refusing
    let held = first.execute("MUG-1", &hold, &none).await;
    assert!(held.is_ok_and(|r| r.events.len() == 1), "refused on an old state");
}

async fn a_companion_another_server_moved_is_refused_with_its_command(cluster: &PrivatePostgres) {
    use ordo_domain::product::*;
    use ordo_eventstore::command::{CommandContext, CommandError, Repository};
    // Given two servers on one store: the first prepares a stock movement on CUP-1 to ride
    // on a hold on MUG-1, and the second moves CUP-1 in between
    let store = std::sync::Arc::new(open(cluster, "joined").await);
    let first = Repository::<Product, _>::new(store.clone(), 100);
    let second = Repository::<Product, _>::new(store.clone(), 100);
    let none = CommandContext::default();
    for sku in ["MUG-1", "CUP-1"] {
        first.execute(sku, &common::list(sku), &none).await.expect("listed");
    }
    first.execute("MUG-1", &common::receive(5), &none).await.expect("stocked");
    let prepared = first.prepare("CUP-1", &common::receive(3), &none).await.expect("prepared");
    second.execute("CUP-1", &common::receive(1), &none).await.expect("moved elsewhere");
    // When the first server commits the hold with it
    let hold = common::reserve("cart-1", 1);
    let joined = first.execute_joined("MUG-1", &hold, &none, prepared.append).await;
    // Then the whole commit is refused for CUP-1's sake, and MUG-1 holds nothing
    assert!(
        matches!(&joined, Err(CommandError::Store(StoreError::WrongExpectedVersion { stream, .. })) if stream == "product-CUP-1"),
        "{joined:?}"
    );
    let held = first.inspect("MUG-1", |_, p| p.reservations.len()).await.expect("mug");
    assert_eq!(held, 0);
    // and once prepared again on CUP-1 as it is, both land
    first.catch_up("CUP-1").await.expect("caught up");
    let prepared = first.prepare("CUP-1", &common::receive(3), &none).await.expect("prepared");
    let held = first.execute_joined("MUG-1", &hold, &none, prepared.append.clone()).await;
    let outcome = held.expect("held").joined.expect("joined");
    first.adopt("CUP-1", prepared, &outcome).await.expect("adopted");
    assert_eq!(first.inspect("CUP-1", |_, p| p.on_hand).await.expect("cup"), 4);
}

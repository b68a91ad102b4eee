//! The bookkeeping several instances share in Redis (`--coordination redis`, and always on
//! KurrentDB), against a real private `redis-server`: leases and their fence, the checkout
//! process's state, Idempotency-Key records.

use ordo_application::redis_shared::RedisShared;
use ordo_eventstore::postgres::shared::RequestClaim;
use ordo_eventstore::StoreError;
use ordo_projections::redis_server::PrivateRedis;
use std::collections::HashMap;
use std::time::Duration;

/// A lease's lifetime in these tests: long enough that a stall of a loaded CI machine between
/// two calls does not lapse it.
const TTL: Duration = Duration::from_secs(1);

async fn shared() -> (RedisShared, PrivateRedis, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let server = PrivateRedis::start(dir.path(), false).expect("private Redis");
    let client = redis::Client::open(server.url()).expect("url");
    let connection = client.get_connection_manager().await.expect("connects");
    (RedisShared::new(connection), server, dir)
}

#[tokio::test]
async fn given_a_live_lease_when_another_instance_asks_then_it_waits_until_the_lease_lapses() {
    let (shared, _server, _dir) = shared().await;

    let first = shared.try_acquire("checkout", "a", TTL).await.expect("acquire");
    let while_live = shared.try_acquire("checkout", "b", TTL).await.expect("acquire");
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let after_lapse = shared.try_acquire("checkout", "b", TTL).await.expect("acquire");

    assert_eq!(first, Some(1));
    assert_eq!(while_live, None, "a live lease is not taken");
    assert_eq!(after_lapse, Some(2), "the takeover raises the epoch");
    assert!(!shared.renew("checkout", "a", 1, TTL).await.expect("renew"), "a's lease is gone");
    let leases = shared.leases().await.expect("leases");
    assert_eq!(leases.len(), 1);
    assert_eq!((leases[0].role.as_str(), leases[0].holder.as_str()), ("checkout", "b"));
    assert!(leases[0].expires_at_ms > leases[0].now_ms, "live");
}

#[tokio::test]
async fn given_a_released_lease_when_another_instance_asks_then_it_takes_it_at_once() {
    let (shared, _server, _dir) = shared().await;
    shared.try_acquire("outbox", "a", Duration::from_secs(60)).await.expect("acquire");

    shared.release("outbox", "a", 1).await.expect("release");

    assert_eq!(shared.try_acquire("outbox", "b", TTL).await.expect("acquire"), Some(2));
}

#[tokio::test]
async fn given_a_holder_that_lost_its_lease_when_it_saves_its_checkpoint_then_it_is_fenced() {
    let (shared, _server, _dir) = shared().await;
    shared.try_acquire("checkout", "a", TTL).await.expect("acquire");
    let due =
        HashMap::from([("cart-1".to_owned(), Some(1_000)), ("cart-2".to_owned(), Some(2_000))]);
    shared.save_process_state("checkout", Some(("checkout", 1)), 10, &due).await.expect("saved");
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    shared.try_acquire("checkout", "b", TTL).await.expect("acquire");

    let stale = HashMap::from([("cart-1".to_owned(), None)]);
    let refused = shared.save_process_state("checkout", Some(("checkout", 1)), 99, &stale).await;
    let by_new_holder =
        shared.save_process_state("checkout", Some(("checkout", 2)), 12, &stale).await;

    assert!(matches!(refused, Err(StoreError::Fenced { epoch: 1, .. })), "{refused:?}");
    assert!(by_new_holder.is_ok(), "{by_new_holder:?}");
    assert_eq!(shared.process_checkpoint("checkout").await.expect("read"), Some(12));
    let left = shared.carts_due().await.expect("read");
    assert_eq!(left.into_iter().collect::<Vec<_>>(), vec![("cart-2".to_owned(), 2_000)]);
}

#[tokio::test]
async fn given_a_keyed_request_when_it_is_sent_again_then_it_is_in_progress_then_answered_from_its_record(
) {
    let (shared, _server, _dir) = shared().await;
    let (record, fingerprint) = ([7u8; 32], [1u8; 32]);
    let day = Duration::from_secs(86_400);

    let first = shared.claim_request(&record, &fingerprint, "a", TTL, day).await.expect("claim");
    let duplicate =
        shared.claim_request(&record, &fingerprint, "b", TTL, day).await.expect("claim");
    shared.finish_request(&record, "a", b"response", day).await.expect("finish");
    let retry = shared.claim_request(&record, &fingerprint, "b", TTL, day).await.expect("claim");

    assert_eq!(first, RequestClaim::Claimed);
    assert_eq!(duplicate, RequestClaim::InProgress);
    assert_eq!(
        retry,
        RequestClaim::Done { fingerprint: fingerprint.to_vec(), response: b"response".to_vec() }
    );
}

#[tokio::test]
async fn given_a_claim_abandoned_or_lapsed_when_the_key_is_sent_again_then_it_runs_again() {
    let (shared, _server, _dir) = shared().await;
    let day = Duration::from_secs(86_400);
    shared.claim_request(&[1; 32], &[0; 32], "a", TTL, day).await.expect("claim");
    shared.claim_request(&[2; 32], &[0; 32], "a", TTL, day).await.expect("claim");

    shared.abandon_request(&[1; 32], "a").await.expect("abandon");
    let after_abandon =
        shared.claim_request(&[1; 32], &[0; 32], "b", TTL, day).await.expect("claim");
    tokio::time::sleep(TTL + Duration::from_millis(100)).await;
    let after_lapse = shared.claim_request(&[2; 32], &[0; 32], "b", TTL, day).await.expect("claim");

    assert_eq!(after_abandon, RequestClaim::Claimed);
    assert_eq!(after_lapse, RequestClaim::Claimed, "a dead instance's claim lapses");
}

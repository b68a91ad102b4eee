//! The projection runner's fence (`WATCH` on its checkpoint, then `MULTI/EXEC`) holds only on a
//! connection that is not replaced between the two: a transaction sent after a silent
//! reconnect runs unwatched. `fenced_connection` gives runners one that fails instead. A runner
//! arms the next batch's fence in the same round trip as a batch's transaction; a rival that
//! moves the checkpoint between two batches, or a connection lost between them, still stops
//! the next batch.

mod shop;

use ordo_eventstore::{EventStore, RecordedEvent, SubscribeFrom};
use ordo_projections::keys::Namespace;
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::{fenced_connection, ProjectionError, Runner, RunnerConfig};
use ordo_projections::views::{ProductView, View};
use redis::aio::ConnectionManager;
use std::time::Duration;

/// Watches the checkpoint on `con`, has that connection killed from outside, lets a rival move
/// the checkpoint, then sends the fenced write on `con`. Whether the write was applied.
async fn fenced_write_after_a_kill(
    mut con: ConnectionManager,
    rival: &mut ConnectionManager,
) -> bool {
    let id: i64 = redis::cmd("CLIENT").arg("ID").query_async(&mut con).await.expect("client id");
    let _: () = redis::cmd("WATCH").arg("checkpoint").query_async(&mut con).await.expect("watch");
    let before = connected_clients(rival).await;
    let _: () =
        redis::cmd("CLIENT").arg("KILL").arg("ID").arg(id).query_async(rival).await.expect("kill");
    let _: () = redis::cmd("SET").arg("checkpoint").arg(2).query_async(rival).await.expect("rival");
    // Time for a manager that reconnects on its own to do so (the count comes back).
    for _ in 0..50 {
        if connected_clients(rival).await >= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _: Result<Option<redis::Value>, _> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("written")
        .arg(id)
        .ignore()
        .query_async(&mut con)
        .await;
    let written: Option<i64> =
        redis::cmd("GET").arg("written").query_async(rival).await.expect("get");
    written == Some(id)
}

async fn connected_clients(con: &mut ConnectionManager) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query_async(con).await.expect("list");
    list.lines().count()
}

#[tokio::test]
async fn given_a_resp3_url_when_a_runner_connection_drops_under_its_watch_then_its_fenced_write_is_not_applied(
) {
    // Given a Redis URL asking for RESP3, whose connection managers reconnect on their own
    let dir = tempfile::tempdir().expect("temp dir");
    let server = PrivateRedis::start(&dir.path().join("redis"), false).expect("redis-server");
    let client = redis::Client::open(format!("{}?protocol=resp3", server.url())).expect("url");
    let mut rival = client.get_connection_manager().await.expect("rival connection");

    // When a plain manager's and a runner's connection are each dropped between WATCH and EXEC
    let plain = client.get_connection_manager().await.expect("plain connection");
    let plain_applied = fenced_write_after_a_kill(plain, &mut rival).await;
    let runner = fenced_connection(&client).await.expect("runner connection");
    let runner_applied = fenced_write_after_a_kill(runner, &mut rival).await;

    // Then the plain manager's write went through unwatched (the hazard is real), and the
    // runner's was refused
    assert!(
        plain_applied,
        "the plain manager did not reconnect on its own: the test proves nothing"
    );
    assert!(!runner_applied, "a write fenced by WATCH was applied on a reconnected connection");
}

/// A runner for the catalogue (version 7) of the scripted shop that has applied the first two
/// events (MUG-1 listed and stocked), and the third (MUG-2 listed) for its next batch.
async fn runner_after_one_batch(
    shop: &shop::Shop,
) -> (Runner<ProductView, ordo_eventstore::EmbeddedStore>, RecordedEvent) {
    let events = shop.store.read_all(SubscribeFrom::Start, 3).await.expect("events");
    let connection = fenced_connection(&shop.client).await.expect("runner connection");
    let mut runner =
        Runner::<ProductView, _>::new(shop.store.clone(), connection, 7, RunnerConfig::default())
            .await
            .expect("runner");
    runner.apply(&events[..2], events[1].position).await.expect("first batch");
    (runner, events[2].clone())
}

async fn rival_moves_the_checkpoint(shop: &shop::Shop) {
    let checkpoint = Namespace::new(ProductView::PROJECTION, 7).checkpoint();
    let _: () = redis::cmd("SET")
        .arg(checkpoint)
        .arg(999)
        .query_async(&mut shop.connection().await)
        .await
        .expect("rival");
}

async fn mug_2_written(shop: &shop::Shop) -> bool {
    let key = ProductView::key(&Namespace::new(ProductView::PROJECTION, 7), "MUG-2");
    redis::cmd("EXISTS").arg(key).query_async(&mut shop.connection().await).await.expect("exists")
}

#[tokio::test]
async fn given_a_runner_between_batches_when_a_rival_moves_its_checkpoint_then_its_next_batch_is_fenced(
) {
    // Given a runner whose first batch armed the fence for its next
    let shop = shop::scripted_shop().await;
    let (mut runner, next) = runner_after_one_batch(&shop).await;

    // When a rival moves the checkpoint before the next batch
    rival_moves_the_checkpoint(&shop).await;
    let refused = runner.apply(std::slice::from_ref(&next), next.position).await;

    // Then the next batch is refused and writes nothing
    assert!(matches!(refused, Err(ProjectionError::Fenced(_))), "{refused:?}");
    assert!(!mug_2_written(&shop).await, "a fenced batch wrote its document");
}

#[tokio::test]
async fn given_a_runner_whose_connection_dropped_between_batches_when_a_rival_moves_its_checkpoint_then_no_later_batch_is_applied(
) {
    // Given a runner whose first batch armed the fence, and whose connection (with its WATCH)
    // is then killed
    let shop = shop::scripted_shop().await;
    let (mut runner, next) = runner_after_one_batch(&shop).await;
    let mut rival = shop.connection().await;
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut rival)
        .await
        .expect("kill");

    // When a rival moves the checkpoint, and the runner tries its next batch twice (the first
    // try meets the dead connection; the second runs on a new one, with no WATCH of its own)
    rival_moves_the_checkpoint(&shop).await;
    let first = runner.apply(std::slice::from_ref(&next), next.position).await;
    let second = runner.apply(std::slice::from_ref(&next), next.position).await;

    // Then neither try wrote: the second fenced itself again instead of trusting the lost one
    assert!(matches!(first, Err(ProjectionError::Redis(_))), "{first:?}");
    assert!(matches!(second, Err(ProjectionError::Fenced(_))), "{second:?}");
    assert!(!mug_2_written(&shop).await, "a batch wrote over the rival's checkpoint");
}

#[tokio::test]
async fn given_a_runner_that_reached_its_target_when_its_connection_sends_a_transaction_then_no_watch_of_the_runner_is_left_on_it(
) {
    // Given a runner that ran to the head on a connection its caller keeps using (as a rebuild
    // does, to switch versions afterwards)
    let shop = shop::scripted_shop().await;
    let mut connection = fenced_connection(&shop.client).await.expect("runner connection");
    let mut runner = Runner::<ProductView, _>::new(
        shop.store.clone(),
        connection.clone(),
        7,
        RunnerConfig::default(),
    )
    .await
    .expect("runner");
    let head = shop.store.last_position().await.expect("head");
    runner.run(head, |_| {}).await.expect("ran to the head");

    // When the checkpoint moves and the caller sends a transaction of its own on that connection
    rival_moves_the_checkpoint(&shop).await;
    let done: Option<redis::Value> = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("switched")
        .arg(1)
        .ignore()
        .query_async(&mut connection)
        .await
        .expect("transaction");

    // Then it ran: the runner's fence ended with the runner
    assert!(done.is_some(), "the caller's transaction ran under the runner's left-over WATCH");
}

/// Keeps Redis's one thread busy for `ARGV[1]` milliseconds.
const SPIN: &str =
    "local function now() local t = redis.call('TIME') return t[1] * 1000000 + t[2] end \
    local stop = now() + ARGV[1] * 1000 while now() < stop do end return 0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_redis_busy_longer_than_the_clients_default_timeout_when_a_runner_writes_a_batch_then_it_waits_for_the_reply(
) {
    let shop = shop::scripted_shop().await;
    let (mut runner, next) = runner_after_one_batch(&shop).await;
    // Given Redis busy for 1.5 s, longer than the client's default response timeout (500 ms)
    // even once the runner's write is sent 300 ms into it, as under a large first batch on a
    // loaded machine
    let mut other = shop.connection().await;
    let busy = tokio::spawn(async move {
        let _: Result<i64, _> =
            redis::cmd("EVAL").arg(SPIN).arg(0).arg(1_500).query_async(&mut other).await;
    });
    // Time for the script to reach Redis first, with room to spare on a loaded machine.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // When the runner writes its next batch
    let started = std::time::Instant::now();
    let applied = runner.apply(std::slice::from_ref(&next), next.position).await;

    // Then it waited for the reply, and the batch is written
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the batch did not wait behind the script: the test proves nothing"
    );
    assert!(applied.is_ok(), "{applied:?}");
    assert!(mug_2_written(&shop).await);
    busy.await.expect("spin");
}

//! The projection runner and rebuilds against a real private `redis-server`: a runner killed
//! between batches, Redis going away and coming back, a rebuild into a new version while the
//! old one is served.

mod shop;

use ordo_domain::product::Product;
use ordo_eventstore::command::Repository;
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore, EventStore, Position};
use ordo_projections::keys::Namespace;
use ordo_projections::query::ReadModels;
use ordo_projections::rebuild::digest;
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::{Runner, RunnerConfig};
use ordo_projections::views::{OrderView, ProductView};
use shop::*;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_between_batches_ends_exactly_like_a_clean_rebuild() {
    let shop = scripted_shop().await;
    let head = shop.store.last_position().await.expect("head").expect("events");
    // Small batches, stopped (dropped) at several points and restarted from Redis's checkpoint.
    let small = RunnerConfig { batch_size: 5, ..RunnerConfig::default() };
    for stop in [head.0 / 4, head.0 / 2, head.0 * 3 / 4, head.0] {
        shop.project::<ProductView>(1, small.clone(), Some(Position(stop))).await;
    }
    shop.project::<ProductView>(2, RunnerConfig::default(), Some(head)).await;
    let mut con = shop.connection().await;
    let interrupted = digest(&mut con, &Namespace::new("catalogue", 1)).await.expect("digest");
    let rebuilt = digest(&mut con, &Namespace::new("catalogue", 2)).await.expect("digest");
    assert_eq!(interrupted, rebuilt);
    // And a runner whose cache can hold only two documents, so it keeps evicting and rereading.
    let tiny = RunnerConfig { batch_size: 3, cache_capacity: 2 };
    shop.project::<ProductView>(3, tiny, Some(head)).await;
    assert_eq!(digest(&mut con, &Namespace::new("catalogue", 3)).await.expect("digest"), rebuilt);

    // The same for orders, whose documents change status across batches.
    for stop in [head.0 / 3, head.0 * 2 / 3, head.0] {
        shop.project::<OrderView>(1, small.clone(), Some(Position(stop))).await;
    }
    shop.project::<OrderView>(2, RunnerConfig::default(), Some(head)).await;
    assert_eq!(
        digest(&mut con, &Namespace::new("orders", 1)).await.expect("digest"),
        digest(&mut con, &Namespace::new("orders", 2)).await.expect("digest")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_that_started_from_nothing_reads_no_document_back_until_it_evicts_one() {
    let shop = scripted_shop().await;
    let head = shop.store.last_position().await.expect("head");
    let mut con = shop.connection().await;
    let small = RunnerConfig { batch_size: 5, ..RunnerConfig::default() };
    shop.project::<OrderView>(1, small, head).await;
    assert_eq!(document_reads(&mut con).await, 0, "every document it lacks is new");

    // A cache of two evicts, and from then on a document it lacks may exist: it reads them.
    let tiny = RunnerConfig { batch_size: 5, cache_capacity: 2 };
    shop.project::<OrderView>(2, tiny, head).await;
    assert!(document_reads(&mut con).await > 0);
    assert_eq!(
        digest(&mut con, &Namespace::new("orders", 1)).await.expect("digest"),
        digest(&mut con, &Namespace::new("orders", 2)).await.expect("digest")
    );
}

/// `HGETALL`s Redis has run: how a runner reads a document back.
async fn document_reads(con: &mut redis::aio::ConnectionManager) -> u64 {
    calls(con, "hgetall").await
}

/// How many times Redis has run `command` (lower case).
async fn calls(con: &mut redis::aio::ConnectionManager, command: &str) -> u64 {
    let stats: String =
        redis::cmd("INFO").arg("commandstats").query_async(con).await.expect("info");
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilds_replay_time_leaves_out_the_grace_period() {
    let shop = scripted_shop().await;
    let grace = Duration::from_millis(1_500);
    let report = shop.rebuild_with_grace::<OrderView>(grace).await;
    assert!(report.elapsed >= grace);
    assert!(report.replayed_in < grace, "a few events replay well within the grace: {report:?}");
    assert!(report.elapsed - report.replayed_in >= grace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_fills_a_new_version_switches_and_removes_the_old_one() {
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let mut con = shop.connection().await;
    let before = digest(&mut con, &Namespace::new("orders", 1)).await.expect("digest");
    let report = shop.rebuild::<OrderView>().await;
    assert_eq!(report.version, 2);
    assert!(report.removed_keys > 0);
    let active: u32 =
        redis::cmd("GET").arg("ordo:orders:active").query_async(&mut con).await.expect("active");
    assert_eq!(active, 2);
    assert_eq!(
        digest(&mut con, &Namespace::new("orders", 2)).await.expect("digest"),
        before,
        "same content, new version"
    );
    let old: Vec<String> =
        redis::cmd("KEYS").arg("ordo:orders:v1:*").query_async(&mut con).await.expect("keys");
    assert!(old.is_empty(), "old version removed: {old:?}");
    assert!(calls(&mut con, "scan").await > 0, "found by walking the keyspace");
    let reads = ReadModels::new(shop.connection().await);
    assert!(reads.order("ord-a1").await.expect("query").is_some(), "queries follow the switch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_into_a_redis_without_another_version_does_not_walk_the_keyspace() {
    let shop = scripted_shop().await;
    let report = shop.rebuild::<OrderView>().await;
    assert_eq!((report.version, report.removed_keys), (2, 0));
    let mut con = shop.connection().await;
    assert_eq!(calls(&mut con, "scan").await, 0, "no other version had a checkpoint");

    // Once there is one (the version just rebuilt), the next rebuild walks and removes it.
    let report = shop.rebuild::<OrderView>().await;
    assert_eq!(report.version, 3);
    assert!(report.removed_keys > 0);
    assert!(calls(&mut con, "scan").await > 0);
    let old: Vec<String> =
        redis::cmd("KEYS").arg("ordo:orders:v2:*").query_async(&mut con).await.expect("keys");
    assert!(old.is_empty(), "version 2 removed: {old:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_resumes_by_itself_when_redis_comes_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("events.redb"))).expect("store"),
    );
    let products = Repository::<Product, _>::new(store.clone(), 10);
    let list = |sku: &str| list(sku, "Mug", "", "kitchen", "Potter", 100);
    products.execute("AAA-1", &list("AAA-1"), &ctx()).await.expect("listed");
    let redis_dir = dir.path().join("redis");
    let mut server = PrivateRedis::start(&redis_dir, true).expect("redis");
    let client = redis::Client::open(server.url()).expect("url");
    let con = client.get_connection_manager().await.expect("connection");
    let mut runner = Runner::<ProductView, _>::new(store.clone(), con, 1, RunnerConfig::default())
        .await
        .expect("runner");
    let first = store.last_position().await.expect("head");
    runner.run(first, |_| {}).await.expect("first product");

    server.stop();
    products
        .execute("BBB-1", &list("BBB-1"), &ctx())
        .await
        .expect("the write side does not need Redis");
    let target = store.last_position().await.expect("head");
    let task =
        tokio::spawn(async move { runner.run(target, |_| {}).await.map(|_| runner.checkpoint()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _server = PrivateRedis::start(&redis_dir, true).expect("redis again");
    let applied = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("resumed in time")
        .expect("task")
        .expect("runner");
    assert_eq!(applied, target);
    let reads = ReadModels::new(client.get_connection_manager().await.expect("connection"));
    assert!(reads.product("BBB-1").await.expect("query").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_projection_follows_a_rebuild_to_the_new_version() {
    let shop = scripted_shop().await;
    let head = shop.store.last_position().await.expect("head").expect("events");
    let (applied_tx, mut applied) = tokio::sync::watch::channel(0);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let served = tokio::spawn(ordo_projections::supervisor::supervise::<ProductView, _>(
        shop.store.clone(),
        shop.client.clone(),
        RunnerConfig::default(),
        applied_tx,
        stopped,
    ));
    tokio::time::timeout(Duration::from_secs(10), applied.wait_for(|p| *p > head.0))
        .await
        .expect("caught up")
        .expect("open");

    let report = shop.rebuild::<ProductView>().await;
    assert_eq!(report.version, 2);
    // Written after the rebuild finished: only the served runner can carry it into v2.
    let products = Repository::<Product, _>::new(shop.store.clone(), 10);
    let list = list("NEW-1", "Brand new", "", "kitchen", "Potter", 500);
    let receipt = products.execute("NEW-1", &list, &ctx()).await.expect("listed");
    let reads = ReadModels::new(shop.connection().await);
    let position = receipt.position.expect("appended").0;
    reads
        .wait_for("catalogue", position, Duration::from_secs(10))
        .await
        .expect("v2 reached the new event");
    assert_eq!(
        reads.product("NEW-1").await.expect("query").map(|p| p.name),
        Some("Brand new".to_owned())
    );

    stop.send(true).expect("signal");
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("stops")
        .expect("task")
        .expect("clean");
    // and once stopped, it reports nothing applied here: queries stop waiting for it.
    assert_eq!(*applied.borrow(), 0);
}

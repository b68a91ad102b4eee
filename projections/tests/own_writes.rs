//! Reading one's own writes against a real private `redis-server`: a query at a position
//! answers from a read model that has applied it, and the check of the checkpoint rides with
//! the query's own first request.

mod shop;

use ordo_eventstore::EventStore;
use ordo_projections::query::ReadModels;
use ordo_projections::runner::RunnerConfig;
use ordo_projections::views::{OrderView, View};
use shop::*;
use std::collections::HashMap;
use std::time::Duration;

/// How many reads from its clients Redis has processed (`INFO stats`), through `stats`: a
/// pipeline sent at once is one read, each round trip another.
async fn reads_processed(stats: &mut redis::aio::ConnectionManager) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query_async(stats).await.expect("info");
    let count = info.lines().find_map(|line| line.strip_prefix("total_reads_processed:"));
    count.and_then(|c| c.trim().parse().ok()).expect("total_reads_processed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_at_a_position_answers_once_its_read_model_has_it_and_not_before() {
    // Given a shop whose orders are projected, and then one more order, not projected yet
    let shop = scripted_shop().await;
    shop.project::<OrderView>(1, RunnerConfig::default(), None).await;
    shop.place_order("cust-own", "ord-own", 1_700_000_000_000).await;
    let position = shop.store.last_position().await.expect("head").expect("events").0;
    let reads = std::sync::Arc::new(ReadModels::new(shop.connection().await));

    // When a query asks for that order at its position
    let asking = reads.clone();
    let query = tokio::spawn(async move {
        let order =
            |reader: ordo_projections::query::Reader| async move { reader.order("ord-own").await };
        asking.read(OrderView::PROJECTION, Some(position), Duration::from_secs(10), order).await
    });

    // Then it waits while the read model is short of the position
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!query.is_finished(), "answered before the order was projected");
    // and answers with the order once it is projected.
    shop.project::<OrderView>(1, RunnerConfig::default(), None).await;
    let order = tokio::time::timeout(Duration::from_secs(5), query)
        .await
        .expect("answered in time")
        .expect("task")
        .expect("query");
    assert_eq!(order.map(|o| o.customer_id), Some("cust-own".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_at_an_applied_position_checks_it_in_its_own_round_trip_and_waits_for_no_runner() {
    // Given a projected shop, and a runner here that reports nothing applied (it does not run
    // here: another instance runs it)
    let shop = scripted_shop().await;
    shop.project::<OrderView>(1, RunnerConfig::default(), None).await;
    let head = shop.store.last_position().await.expect("head").expect("events").0;
    let (_not_running, applied) = tokio::sync::watch::channel(0);
    let reads = ReadModels::new(shop.connection().await)
        .woken_by(HashMap::from([(OrderView::PROJECTION, applied)]));
    let order =
        |reader: ordo_projections::query::Reader| async move { reader.order("ord-a1").await };
    reads
        .read(OrderView::PROJECTION, Some(head), Duration::from_secs(1), order)
        .await
        .expect("warm");
    let gets = shop.calls("get").await;
    let mut stats = shop.connection().await;
    let reads_before = reads_processed(&mut stats).await;

    // When a query asks for a position its read model has applied
    let started = std::time::Instant::now();
    let answer = reads.read(OrderView::PROJECTION, Some(head), Duration::from_secs(1), order).await;

    // Then it answers at once, having read the checkpoint once (its namespace is cached), in
    // the round trip that read the order: Redis read one request from the query (and the
    // next from the `INFO` asking).
    assert!(answer.expect("query").is_some(), "order ord-a1 of the scripted shop");
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    assert_eq!(reads_processed(&mut stats).await - reads_before, 2);
    assert_eq!(shop.calls("get").await - gets, 1);
}

//! Redis comes and goes while shoppers check out: no order is left behind, the read side
//! catches up, and every order's integration events are published.
//!
//! Redis holds only derived data (read models, the outbox stream), so it may restart, fail
//! over to a replica that lagged, or come back empty. None of that may move a process past an
//! event it did not handle: every order must end confirmed or cancelled in the event log, its
//! view must match, and the outbox must publish each order's events at least once.

use ordo_projections::redis_server::PrivateRedis;
use ordo_tests::{Options, Server};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHOPPERS: usize = 24;

/// One shopper's whole visit: session, cart, a line, checkout. Returns the order id. Commands
/// never need Redis, so each step must succeed whatever Redis is doing.
async fn shop(server: Arc<Server>, n: usize) -> String {
    let (token, _) = server.guest().await;
    let placed = server.check_out(&token, &format!("MUG-{}", n % 3), 1).await;
    placed["id"].as_str().expect("order id").to_owned()
}

/// Restarts Redis on the same socket: with its data (a crash and restart), or empty (a
/// failover to a replica that had nothing, or a cache-only Redis).
fn restart(redis: &mut PrivateRedis, dir: &Path, keep_data: bool) {
    redis.stop();
    if !keep_data {
        let _ = std::fs::remove_dir_all(dir.join("appendonlydir"));
    }
    *redis = PrivateRedis::start(dir, true).expect("redis restarts");
}

/// Order id -> types of the integration events published for it.
fn published(url: &str) -> HashMap<String, HashSet<String>> {
    let client = redis::Client::open(url).expect("url");
    let Ok(mut con) = client.get_connection() else { return HashMap::new() };
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("ordo:integration:orders")
        .arg("-")
        .arg("+")
        .query(&mut con)
        .unwrap_or_default();
    let mut by_order: HashMap<String, HashSet<String>> = HashMap::new();
    for (_, fields) in entries {
        let pairs: HashMap<&str, &str> =
            fields.chunks(2).map(|kv| (kv[0].as_str(), kv[1].as_str())).collect();
        let field = |name: &str| pairs.get(name).copied().unwrap_or_default().to_owned();
        by_order.entry(field("order_id")).or_default().insert(field("type"));
    }
    by_order
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_order_is_settled_viewed_and_published_while_redis_flaps() {
    // Given a server on a Redis the test can kill, and stock for every shopper
    let redis_dir = tempfile::tempdir().expect("temp dir");
    let mut redis = PrivateRedis::start(redis_dir.path(), true).expect("redis-server");
    let url = redis.url();
    let server = Arc::new(Server::start_with(Options {
        redis_url: Some(url.clone()),
        ..Options::default()
    }));
    let admin = server.admin();
    for n in 0..3 {
        server.stock_product(&admin, &format!("MUG-{n}"), "Stoneware mug", 1_250, 1_000).await;
    }

    // When shoppers check out while Redis is killed and restarted, once coming back empty
    // (each shopper keeps coming back until the flapping is over, so checkouts overlap it)
    let flapping = Arc::new(AtomicBool::new(true));
    let mut visits = tokio::task::JoinSet::new();
    for n in 0..SHOPPERS {
        let (server, flapping) = (server.clone(), flapping.clone());
        visits.spawn(async move {
            let mut orders = vec![shop(server.clone(), n).await];
            while flapping.load(Ordering::Relaxed) {
                orders.push(shop(server.clone(), n).await);
            }
            orders
        });
    }
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        restart(&mut redis, redis_dir.path(), round != 2);
    }
    flapping.store(false, Ordering::Relaxed);
    let orders: Vec<String> = visits.join_all().await.into_iter().flatten().collect();
    assert!(orders.len() > SHOPPERS, "checkouts overlapped the flapping: {}", orders.len());

    // Then every order ends confirmed or cancelled in the log
    let started = Instant::now();
    for order in &orders {
        loop {
            let types = server.event_types(&admin, &format!("order-{order}")).await;
            if types.iter().any(|t| t == "OrderConfirmed" || t == "OrderCancelled") {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "order {order} left at {types:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // And its view says so
    for order in &orders {
        let path = format!("/v1/orders/{order}");
        let view: Value = server
            .eventually(&path, &admin, |o| o["status"] == "confirmed" || o["status"] == "cancelled")
            .await;
        assert_eq!(view["order_id"], json!(order));
    }
    // And its placed and settled events were published, even those Redis lost when it came
    // back empty
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let by_order = published(&url);
        let missing: Vec<&String> = orders
            .iter()
            .filter(|o| {
                let types = by_order.get(*o);
                !types.is_some_and(|t| {
                    t.contains("order.placed")
                        && (t.contains("order.confirmed") || t.contains("order.cancelled"))
                })
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{} orders not published: {missing:?}", missing.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

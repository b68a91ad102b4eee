//! Queries served from a Redis replica (`--redis-replica`): read-your-writes still holds, and
//! a replica that dies or stops replicating is skipped without a failed query.

use ordo_projections::redis_server::{PrivateRedis, RedisOptions};
use ordo_tests::{free_port, Options, Server};
use serde_json::json;
use std::time::{Duration, Instant};

fn info(url: &str, section: &str) -> String {
    let client = redis::Client::open(url).expect("url");
    let mut con = client.get_connection().expect("connects");
    redis::cmd("INFO").arg(section).query(&mut con).expect("info")
}

/// Calls of `command` the server at `url` has answered.
fn calls(url: &str, command: &str) -> u64 {
    let stats = info(url, "commandstats");
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A primary on a port, a replica of it, and a server reading from the replica.
fn primary_and_replica(dir: &std::path::Path) -> (PrivateRedis, PrivateRedis, Server) {
    let options = RedisOptions { port: Some(free_port()), ..RedisOptions::default() };
    let primary = PrivateRedis::start_with(&dir.join("primary"), &options).expect("primary");
    let replica = PrivateRedis::start_replica(&dir.join("replica"), &primary).expect("replica");
    eventually("the replica linking up", || {
        info(&replica.url(), "replication").contains("master_link_status:up")
    });
    let server = Server::start_with(Options {
        redis_url: Some(primary.url()),
        args: vec!["--redis-replica".into(), replica.url()],
        ..Options::default()
    });
    (primary, replica, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_read_from_the_replica_and_still_read_their_own_writes() {
    // Given a server reading from a replica of its Redis
    let dir = tempfile::tempdir().expect("temp dir");
    let (_primary, replica, server) = primary_and_replica(dir.path());
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    // (the replica is taken into use once its first health check passes)
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = calls(&replica.url(), "hmget");
    // When a price changes twenty times, each read back with its receipt's position
    for price in 1_000..1_020 {
        let (status, receipt) = server
            .call(
                "PUT",
                "/v1/products/MUG-1/price",
                Some(&admin),
                Some(json!({ "price_minor": price })),
            )
            .await;
        assert_eq!(status, 200, "{receipt}");
        let path = format!("/v1/products/MUG-1?min_position={}", receipt["position"]);
        let (status, product) = server.call("GET", &path, None, None).await;
        // Then every read sees its own write
        assert_eq!(status, 200, "{product}");
        assert_eq!(product["price"]["minor"], price, "{product}");
    }
    // and plain reads and searches (one word alone in one SORT_RO, by price with the search
    // script) are answered by the replica.
    let sorts = calls(&replica.url(), "sort_ro");
    for _ in 0..10 {
        let (status, _) = server.call("GET", "/v1/products/MUG-1", None, None).await;
        assert_eq!(status, 200);
        for search in ["/v1/products?q=mug", "/v1/products?q=mug&sort=price_asc"] {
            let (status, page) = server.call("GET", search, None, None).await;
            assert_eq!(status, 200, "{page}");
            assert_eq!(page["products"][0]["sku"], "MUG-1", "{page}");
        }
    }
    assert!(calls(&replica.url(), "hmget") >= before + 10, "reads went elsewhere");
    assert!(calls(&replica.url(), "sort_ro") >= sorts + 10, "searches went elsewhere");
    assert!(calls(&replica.url(), "evalsha") >= 10, "scripted searches went elsewhere");

    // When a shopper checks out and reads their history, first with the order's position
    let (guest, _) = server.guest().await;
    let placed = server.check_out(&guest, "MUG-1", 1).await;
    let path = format!("/v1/me/orders?min_position={}", placed["position"]);
    let (status, history) = server.call("GET", &path, Some(&guest), None).await;
    assert_eq!((status, &history["orders"][0]["order_id"]), (200, &placed["id"]), "{history}");
    // Then its newest pages are read on the replica too (one SORT_RO each).
    let sorts = calls(&replica.url(), "sort_ro");
    for _ in 0..10 {
        let (status, history) = server.call("GET", "/v1/me/orders", Some(&guest), None).await;
        assert_eq!((status, &history["orders"][0]["order_id"]), (200, &placed["id"]), "{history}");
    }
    assert!(calls(&replica.url(), "sort_ro") >= sorts + 10, "history pages went elsewhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_or_stops_replicating_is_skipped_without_a_failed_query() {
    // Given a server reading from a replica
    let dir = tempfile::tempdir().expect("temp dir");
    let (_primary, mut replica, server) = primary_and_replica(dir.path());
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    // When the replica stops replicating (its link to the primary cut: it falls behind for good)
    let client = redis::Client::open(replica.url()).expect("url");
    let mut con = client.get_connection().expect("connects");
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut con).expect("detached");
    // Then writes are still read back at once, from the primary
    for price in 2_000..2_010 {
        let body = json!({ "price_minor": price });
        let (status, receipt) =
            server.call("PUT", "/v1/products/MUG-1/price", Some(&admin), Some(body)).await;
        assert_eq!(status, 200, "{receipt}");
        let path = format!("/v1/products/MUG-1?min_position={}", receipt["position"]);
        let (status, product) = server.call("GET", &path, None, None).await;
        assert_eq!(status, 200, "{product}");
        assert_eq!(product["price"]["minor"], price);
    }
    // and once the health check has seen it, plain reads no longer see its stale data
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, product) = server.call("GET", "/v1/products/MUG-1", None, None).await;
    assert_eq!(product["price"]["minor"], 2_009, "{product}");
    // When the replica dies outright, then every query keeps answering, and fast
    replica.stop();
    for _ in 0..20 {
        let started = Instant::now();
        let (status, product) = server.call("GET", "/v1/products/MUG-1", None, None).await;
        assert_eq!(status, 200, "{product}");
        let (status, page) = server.call("GET", "/v1/products?q=mug", None, None).await;
        assert_eq!(status, 200, "{page}");
        assert!(started.elapsed() < Duration::from_millis(500), "took {:?}", started.elapsed());
    }
}

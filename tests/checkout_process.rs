//! What happens after checkout returns, end to end: the real `ordo serve`, the built-in payment
//! simulator's test tokens, cart expiry from the event log, and the integration-event outbox.

use ordo_projections::redis_server::PrivateRedis;
use ordo_tests::{address, Options, Server};
use serde_json::json;

/// Lists `MUG-1` with 10 units, fills a new guest's cart with 2 and checks out with `token`.
/// Returns (admin token, guest token, order id).
async fn check_out_two_mugs(server: &Server, payment_token: &str) -> (String, String, String) {
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    let (guest, _) = server.guest().await;
    let cart = server.open_cart(&guest).await;
    let (status, body) = server
        .call(
            "PUT",
            &format!("/v1/carts/{cart}/items/MUG-1"),
            Some(&guest),
            Some(json!({ "quantity": 2 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let checkout = json!({ "shipping_address": address(), "payment_token": payment_token });
    let (status, placed) = server
        .call("POST", &format!("/v1/carts/{cart}/checkout"), Some(&guest), Some(checkout))
        .await;
    assert_eq!(status, 201, "{placed}");
    (admin, guest, placed["id"].as_str().expect("order id").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_payment_confirms_the_order_and_commits_the_stock() {
    let server = Server::start();
    let (admin, guest, order) = check_out_two_mugs(&server, "tok_visa").await;

    let order = server
        .eventually(&format!("/v1/orders/{order}"), &guest, |o| o["status"] == "confirmed")
        .await;
    assert_eq!(order["payment_status"], "authorized");
    let confirmed = order["confirmed_at"].as_str().expect("a time");
    assert!(confirmed.ends_with('Z') && confirmed.contains('T'), "RFC 3339: {confirmed}");
    let product = server.event_types(&admin, "product-MUG-1").await;
    assert_eq!(product.last().map(String::as_str), Some("ReservationCommitted"), "{product:?}");
    let (_, mug) = server.call("GET", "/v1/products/MUG-1", None, None).await;
    assert_eq!(mug["available"], 8, "two left the shelf: {mug}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_cancels_the_order_and_puts_the_stock_back() {
    let server = Server::start();
    let (admin, guest, order) = check_out_two_mugs(&server, "tok_declined").await;

    let order = server
        .eventually(&format!("/v1/orders/{order}"), &guest, |o| o["status"] == "cancelled")
        .await;
    assert_eq!(order["payment_status"], "declined");
    assert_eq!(order["cancelled_by"], "system");
    assert!(
        order["cancel_reason"].as_str().is_some_and(|r| r.contains("card declined")),
        "{order}"
    );
    // The process cancels the order, then releases its hold: the release may land just after
    // the cancellation is readable.
    let released = |page: &serde_json::Value| {
        page["events"]
            .as_array()
            .and_then(|e| e.last())
            .is_some_and(|e| e["type"] == "ReservationReleased")
    };
    server.eventually("/v1/admin/streams/product-MUG-1/events", &admin, released).await;
    server.eventually("/v1/products/MUG-1", &guest, |p| p["available"] == 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_provider_failure_is_retried_and_then_succeeds() {
    let server = Server::start();
    let (_, guest, order) = check_out_two_mugs(&server, "tok_transient").await;
    let order = server
        .eventually(&format!("/v1/orders/{order}"), &guest, |o| o["status"] == "confirmed")
        .await;
    assert_eq!(order["payment_status"], "authorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_never_answers_times_out_and_the_order_is_cancelled() {
    let server = Server::start_with(Options {
        args: vec!["--payment-timeout".into(), "200ms".into()],
        ..Options::default()
    });
    let (_, guest, order) = check_out_two_mugs(&server, "tok_hang").await;
    let order = server
        .eventually(&format!("/v1/orders/{order}"), &guest, |o| o["status"] == "cancelled")
        .await;
    assert!(
        order["cancel_reason"].as_str().is_some_and(|r| r.contains("did not answer")),
        "{order}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_between_order_placed_and_payment_completes_the_order_after_restart() {
    // Given a server on a Redis the test owns (so killing the server leaves nothing behind)
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = PrivateRedis::start(&dir.path().join("redis"), false).expect("redis-server");
    let data = dir.path().join("data");
    let options = || Options { redis_url: Some(redis.url()), ..Options::default() };
    let server = Server::start_in(&data, options());
    // tok_slow answers after 2 s: the kill lands while the authorization is in flight.
    let (_, guest, order) = check_out_two_mugs(&server, "tok_slow").await;
    server.kill();

    // When it starts again on the same data
    let server = Server::start_in(&data, options());

    // Then the process picks up from its checkpoint and the order completes
    let order = server
        .eventually(&format!("/v1/orders/{order}"), &guest, |o| o["status"] == "confirmed")
        .await;
    assert_eq!(order["payment_status"], "authorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_cart_expires_and_its_stock_returns() {
    let server = Server::start_with(Options {
        args: vec!["--cart-ttl".into(), "1s".into()],
        ..Options::default()
    });
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    let (guest, _) = server.guest().await;
    let cart = server.open_cart(&guest).await;
    let (status, receipt) = server
        .call(
            "PUT",
            &format!("/v1/carts/{cart}/items/MUG-1"),
            Some(&guest),
            Some(json!({ "quantity": 3 })),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let path = format!("/v1/products/MUG-1?min_position={}", receipt["position"]);
    let (_, held) = server.call("GET", &path, None, None).await;
    assert_eq!(held["available"], 7, "{held}");

    server.eventually(&format!("/v1/carts/{cart}"), &guest, |c| c["status"] == "expired").await;
    server.eventually("/v1/products/MUG-1", &guest, |p| p["available"] == 10).await;
    let product = server.event_types(&admin, "product-MUG-1").await;
    assert!(product.contains(&"ReservationReleased".to_owned()), "{product:?}");
}

async fn integration_events(redis: &PrivateRedis) -> Vec<(String, String, String)> {
    let client = redis::Client::open(redis.url()).expect("url");
    let mut con = client.get_multiplexed_async_connection().await.expect("connect");
    let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("ordo:integration:orders")
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .expect("XRANGE");
    entries
        .into_iter()
        .map(|(_, fields)| {
            let get = |name: &str| {
                fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
            };
            (get("type"), get("event_id"), get("order_id"))
        })
        .collect()
}

/// Polls the stream until `done` holds (10 s at most).
async fn published(
    redis: &PrivateRedis,
    done: impl Fn(&[(String, String, String)]) -> bool,
) -> Vec<(String, String, String)> {
    let started = std::time::Instant::now();
    loop {
        let events = integration_events(redis).await;
        if done(&events) {
            return events;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "published only {events:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_publishes_every_public_order_event_once_per_id_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = PrivateRedis::start(&dir.path().join("redis"), false).expect("redis-server");
    let data = dir.path().join("data");
    let options = || Options { redis_url: Some(redis.url()), ..Options::default() };
    let server = Server::start_in(&data, options());
    let (admin, guest, order) = check_out_two_mugs(&server, "tok_visa").await;
    server.eventually(&format!("/v1/orders/{order}"), &guest, |o| o["status"] == "confirmed").await;
    let before = published(&redis, |events| events.len() >= 2).await;
    assert_eq!(server.terminate().code(), Some(0));

    // After a restart, the next step is published too, and nothing before it changes id.
    let server = Server::start_in(&data, options());
    let ship = json!({ "carrier": "DHL", "tracking": "JJD000390007" });
    let (status, body) =
        server.call("POST", &format!("/v1/orders/{order}/ship"), Some(&admin), Some(ship)).await;
    assert_eq!(status, 200, "{body}");
    let after =
        published(&redis, |events| events.iter().any(|(kind, _, _)| kind == "order.shipped")).await;
    let kinds: Vec<&str> = after.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(kinds, ["order.placed", "order.confirmed", "order.shipped"], "{after:?}");
    assert_eq!(after[..2], before[..2]);
    assert!(after.iter().all(|(_, id, o)| !id.is_empty() && o == &order));
}

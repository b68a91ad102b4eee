//! What an operator scrapes from `/metrics` after a shopper's checkout: the store, the log
//! followers, the payments and the idempotency layer each report, in Prometheus naming.

use ordo_tests::{address, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_shows_in_the_store_follower_payment_and_idempotency_metrics() {
    // Given a confirmed order, checked out with a key and retried once
    let server = Server::start();
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    let (guest, _) = server.guest().await;
    let cart = server.open_cart(&guest).await;
    let item = format!("/v1/carts/{cart}/items/MUG-1");
    server.call("PUT", &item, Some(&guest), Some(json!({ "quantity": 1 }))).await;
    let body = json!({ "shipping_address": address(), "payment_token": "tok_visa" });
    let path = format!("/v1/carts/{cart}/checkout");
    let mut order = String::new();
    for _ in 0..2 {
        let response = server
            .send("POST", &path, Some(&guest), Some(body.clone()), &[("Idempotency-Key", "k-1")])
            .await;
        assert_eq!(response.status(), 201);
        order = response.json::<serde_json::Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned();
    }
    server.eventually(&format!("/v1/orders/{order}"), &guest, |o| o["status"] == "confirmed").await;
    // When the operator scrapes the metrics
    let metrics =
        server.http.get(format!("{}/metrics", server.base)).send().await.expect("scraped");
    let text = metrics.text().await.expect("text");
    // Then each moving part reports
    for name in [
        "ordo_store_append_seconds_count{store=\"embedded\",outcome=\"ok\"}",
        "ordo_store_commit_seconds_count{store=\"embedded\"}",
        "ordo_store_events_per_commit_count{store=\"embedded\"}",
        "ordo_follower_lag_seconds{follower=\"checkout\"}",
        "ordo_follower_events_total{follower=\"orders\"}",
        "ordo_follower_batch_seconds_count{follower=\"checkout\"}",
        "ordo_follower_batch_events_bucket{follower=\"outbox\",le=\"1\"}",
        "ordo_payments_total{outcome=\"authorized\"} 1",
        "ordo_idempotency_replays_total 1",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_with_made_up_methods_are_counted_under_one_label() {
    // Given requests with methods HTTP does not define, each different
    let server = Server::start();
    for method in ["FROB", "FROB2", "XYZZY"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a token");
        let url = format!("{}/v1/products", server.base);
        let response = server.http.request(method, url).send().await.expect("answered");
        assert_eq!(response.status(), 405);
    }
    // When the operator scrapes the metrics
    let metrics =
        server.http.get(format!("{}/metrics", server.base)).send().await.expect("scraped");
    let text = metrics.text().await.expect("text");
    // Then they are counted together, and no series is named after what a client sent
    assert!(!text.contains("FROB") && !text.contains("XYZZY"), "{text}");
    let other = "ordo_http_requests_total{operation=\"other\",method=\"other\",status=\"405\"} 3";
    assert!(text.contains(other), "{other} missing from /metrics:\n{text}");
}

/// The dashboard in `docs/grafana/ordo.json` only charts metrics the code emits, so a renamed
/// metric cannot leave an empty panel behind.
#[test]
fn the_dashboard_charts_only_metrics_the_code_emits() {
    let root = ordo_tests::workspace_root();
    let dashboard =
        std::fs::read_to_string(root.join("docs/grafana/ordo.json")).expect("dashboard");
    let mut source = String::new();
    for dir in ["api/src", "application/src", "eventstore-adapter/src", "projections/src"] {
        collect_rust(&root.join(dir), &mut source);
    }
    let mut checked = 0;
    for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if !word.starts_with("ordo_") {
            continue;
        }
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| word.strip_suffix(suffix))
            .unwrap_or(word);
        assert!(
            source.contains(&format!("\"{name}\"")),
            "the dashboard charts {name}, which nothing emits"
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} metric references found");
}

fn collect_rust(dir: &std::path::Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("source"));
        }
    }
}

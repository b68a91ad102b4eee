//! Requests Ordo must refuse, and refuse cleanly: expired tokens, amounts past what a cart may
//! total, ambiguous or non-JSON bodies. Each refusal is a problem document and changes nothing.

use ordo_tests::{ordo_bin, Server};
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

fn assert_problem(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected, "{body}");
    assert!(body["type"].as_str().is_some_and(|t| t.starts_with("/problems/")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_refused_once_it_expires() {
    // Given a token that lives one second
    let server = Server::start();
    let token = server.token(&["--role", "admin", "--ttl", "1s"]);
    let (status, _) = server.call("GET", "/v1/admin/projections", Some(&token), None).await;
    assert_eq!(status, 200, "valid at first");
    // When it is used past its expiry and the documented clock leeway (2 s)
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let product = json!({ "sku": "LATE-1", "name": "Late", "category": "c", "brand": "b", "price_minor": 100 });
    let (status, body) = server.call("POST", "/v1/products", Some(&token), Some(product)).await;
    // Then it is refused, saying why in words of the API, and nothing was listed
    assert_problem(status, &body, 401);
    assert_eq!(body["detail"], "the bearer token has expired", "{body}");
    let (_, page) = server.call("GET", "/v1/products", None, None).await;
    assert_eq!(page["total"], 0, "{page}");
}

#[test]
fn ordo_token_refuses_a_zero_lifetime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(ordo_bin())
        .args(["token", "--ttl", "0s", "--data-dir"])
        .arg(dir.path())
        .env_remove("ORDO_JWT_SECRET")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 1s"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_past_what_a_cart_may_total_is_refused_and_holds_nothing() {
    // Given a product at the highest price a cart may total
    let server = Server::start();
    let admin = server.admin();
    let limit: i64 = 1_000_000_000_000_000;
    server.stock_product(&admin, "GOLD-1", "Gold bar", limit, 200).await;
    let (guest, _) = server.guest().await;
    let cart = server.open_cart(&guest).await;
    // When a shopper asks for 99 of it
    let item = format!("/v1/carts/{cart}/items/GOLD-1");
    let (status, body) =
        server.call("PUT", &item, Some(&guest), Some(json!({ "quantity": 99 }))).await;
    // Then the line is refused naming the limit, and no unit stays held
    assert_problem(status, &body, 409);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains(&limit.to_string())), "{body}");
    let path = format!("/v1/products/GOLD-1?min_position={}", log_head(&server, &admin).await);
    let (_, product) = server.call("GET", &path, None, None).await;
    assert_eq!(product["available"], 200, "{product}");
    // And one unit is fine
    let (status, body) =
        server.call("PUT", &item, Some(&guest), Some(json!({ "quantity": 1 }))).await;
    assert_eq!(status, 200, "{body}");
    // A price above the limit is refused before it reaches a cart
    let too_dear = json!({ "sku": "GOLD-2", "name": "Gold", "category": "c", "brand": "b", "price_minor": limit + 1 });
    let (status, body) = server.call("POST", "/v1/products", Some(&admin), Some(too_dear)).await;
    assert_problem(status, &body, 400);
}

/// The log's current end, from an admin command that changes nothing visible.
async fn log_head(server: &Server, admin: &str) -> u64 {
    let (status, body) = server.call("GET", "/v1/admin/projections", Some(admin), None).await;
    assert_eq!(status, 200, "{body}");
    body["projections"][0]["head_position"].as_u64().expect("the log has events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ambiguous_and_non_json_bodies_are_refused() {
    let server = Server::start();
    let admin = server.admin();
    let products = format!("{}/v1/products", server.base);
    let send = |content_type: &'static str, body: &'static str| {
        server
            .http
            .post(&products)
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // A repeated key: 400 naming it, whichever copy a parser would keep.
    let repeated =
        r#"{"sku":"DUP-1","name":"A","name":"B","category":"c","brand":"b","price_minor":100}"#;
    let response = send("application/json", repeated).await.expect("sent");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("problem json");
    assert_problem(status, &body, 400);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("\"name\"")), "{body}");
    // JSON sent as text/plain: 415.
    let valid = r#"{"sku":"TXT-1","name":"A","category":"c","brand":"b","price_minor":100}"#;
    let response = send("text/plain", valid).await.expect("sent");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("problem json");
    assert_problem(status, &body, 415);
    // Nothing was listed.
    let (_, page) = server.call("GET", "/v1/products", None, None).await;
    assert_eq!(page["total"], 0, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_are_rfc3339_both_ways() {
    let server = Server::start();
    let (guest, _) = server.guest().await;
    // A time that is not RFC 3339 is refused, naming the format
    let (status, body) =
        server.call("GET", "/v1/me/orders?from=yesterday", Some(&guest), None).await;
    assert_problem(status, &body, 400);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("RFC 3339")), "{body}");
    // One that is, is accepted
    let (status, body) =
        server.call("GET", "/v1/me/orders?from=2026-01-01T00:00:00Z", Some(&guest), None).await;
    assert_eq!(status, 200, "{body}");
    // And times come back in the same form
    let cart = server.open_cart(&guest).await;
    let (status, view) =
        server.call("GET", &format!("/v1/carts/{cart}?min_position=0"), Some(&guest), None).await;
    assert_eq!(status, 200, "{view}");
    let expires = view["expires_at"].as_str().expect("a string");
    assert!(humantime_like(expires), "{expires}");
}

/// `2026-11-22T10:00:00.000Z`-shaped.
fn humantime_like(text: &str) -> bool {
    text.len() == 24 && text.ends_with('Z') && text.as_bytes()[10] == b'T'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_path_segment_is_refused_naming_the_value_and_its_pattern() {
    let server = Server::start();
    let admin = server.admin();

    let (sku_status, sku) = server.call("GET", "/v1/products/mug-1", None, None).await;
    let (id_status, id) = server.call("GET", "/v1/orders/no%20spaces", Some(&admin), None).await;
    let (stream_status, stream) =
        server.call("GET", "/v1/admin/streams/$all/events", Some(&admin), None).await;

    assert_eq!((sku_status, id_status, stream_status), (400, 400, 400));
    assert_eq!(
        sku["detail"],
        r#"the path is not valid: "mug-1" is not a SKU (pattern ^[A-Z0-9][A-Z0-9-]{2,31}$)"#
    );
    assert_eq!(sku["type"], "/problems/bad-request");
    assert!(
        id["detail"].as_str().is_some_and(|d| d.contains(r#""no spaces" is not an id"#)),
        "{id}"
    );
    assert!(
        stream["detail"].as_str().is_some_and(|d| d.contains("is not a stream name")),
        "{stream}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_field_off_its_pattern_is_refused_naming_the_value_and_the_cart_stays_open() {
    // Given a cart with a line in it
    let server = Server::start();
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Mug", 900, 5).await;
    let (guest, _) = server.guest().await;
    let cart = server.open_cart(&guest).await;
    let item = format!("/v1/carts/{cart}/items/MUG-1");
    server.call("PUT", &item, Some(&guest), Some(json!({ "quantity": 1 }))).await;
    let address = |city: &str, country: &str| {
        json!({ "name": "Ada", "line1": "1 Main St", "city": city, "postal_code": "10115",
                "country": country })
    };
    let checkout = format!("/v1/carts/{cart}/checkout");

    // When it is checked out with a lower-case country, then with a blank city
    let lower = json!({ "shipping_address": address("Berlin", "de"), "payment_token": "tok_visa" });
    let (lower_status, lower) = server.call("POST", &checkout, Some(&guest), Some(lower)).await;
    let blank = json!({ "shipping_address": address(" \t", "DE"), "payment_token": "tok_visa" });
    let (blank_status, blank) = server.call("POST", &checkout, Some(&guest), Some(blank)).await;

    // Then both are refused saying which value broke which pattern, and the cart is still open
    assert_problem(lower_status, &lower, 400);
    let detail = lower["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(
            r#"the body is not valid: "de" is not a two-letter country code (pattern ^[A-Z]{2}$)"#
        ),
        "{lower}"
    );
    assert_problem(blank_status, &blank, 400);
    let detail = blank["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("is not text with a visible character"), "{blank}");
    let (_, view) = server.call("GET", &format!("/v1/carts/{cart}"), Some(&guest), None).await;
    assert_eq!(view["status"], "open", "{view}");
}

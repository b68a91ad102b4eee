//! The HTTP API end to end: the real `ordo serve` binary, a private Redis, a temporary data
//! directory, driven over HTTP as a shop's frontend and its staff would.

use ordo_projections::redis_server::PrivateRedis;
use ordo_tests::{address, Options, Server};
use serde_json::{json, Value};

fn position(receipt: &Value) -> u64 {
    receipt["position"].as_u64().expect("receipt has a position")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shopper_finds_a_product_buys_it_sees_the_order_in_history_and_cancels_it() {
    // Given a catalogue with stock
    let server = Server::start();
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    let listed = server.stock_product(&admin, "TEA-1", "Green tea", 800, 5).await;

    // When a guest searches (reading the catalogue at least as new as the last receipt)
    let (status, page) =
        server.call("GET", &format!("/v1/products?q=mug&min_position={listed}"), None, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["products"][0]["sku"], "MUG-1");
    assert_eq!(page["products"][0]["available"], 10);
    assert_eq!(page["total"], 1);

    // and puts two mugs in a cart and checks out
    let (guest, customer) = server.guest().await;
    let cart = server.open_cart(&guest).await;
    let item = format!("/v1/carts/{cart}/items/MUG-1");
    let (status, receipt) =
        server.call("PUT", &item, Some(&guest), Some(json!({ "quantity": 2 }))).await;
    assert_eq!(status, 200, "{receipt}");
    let (status, seen) = server
        .call(
            "GET",
            &format!("/v1/carts/{cart}?min_position={}", position(&receipt)),
            Some(&guest),
            None,
        )
        .await;
    assert_eq!((status, &seen["total_minor"]), (200, &json!(2_500)), "{seen}");
    let (status, product) = server
        .call("GET", &format!("/v1/products/MUG-1?min_position={}", position(&receipt)), None, None)
        .await;
    assert_eq!((status, &product["available"]), (200, &json!(8)), "the cart holds two: {product}");
    let checkout = json!({ "shipping_address": address(), "payment_token": "tok_visa" });
    let (status, placed) = server
        .call("POST", &format!("/v1/carts/{cart}/checkout"), Some(&guest), Some(checkout))
        .await;
    assert_eq!(status, 201, "checkout creates an order: {placed}");
    let order_id = placed["id"].as_str().expect("order id").to_owned();

    // Then the order is in their history at once, using the receipt's position
    let (status, history) = server
        .call(
            "GET",
            &format!("/v1/me/orders?min_position={}", position(&placed)),
            Some(&guest),
            None,
        )
        .await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["orders"][0]["order_id"], order_id.as_str());
    assert_eq!(history["orders"][0]["total_minor"], 2_500);
    assert_eq!(history["orders"][0]["customer_id"], customer.as_str());
    let (status, order) =
        server.call("GET", &format!("/v1/orders/{order_id}"), Some(&guest), None).await;
    assert_eq!(status, 200, "{order}");
    // Placed, or already confirmed if the payment process was quicker than this request.
    assert!(order["status"] == "placed" || order["status"] == "confirmed", "{order}");
    assert_eq!(order["lines"][0]["name"], "Stoneware mug");
    assert_eq!(order["shipping_address"]["city"], "Berlin");

    // and when they cancel it, the history shows it cancelled by the customer
    let cancel = json!({ "reason": "changed my mind" });
    let (status, cancelled) = server
        .call("POST", &format!("/v1/orders/{order_id}/cancel"), Some(&guest), Some(cancel))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    let path = format!(
        "/v1/customers/{customer}/orders?status=cancelled&min_position={}",
        position(&cancelled)
    );
    let (status, history) = server.call("GET", &path, Some(&guest), None).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["orders"][0]["status"], "cancelled");
    assert_eq!(history["orders"][0]["cancelled_by"], "customer");
    // and the two mugs it held go back on the shelf (released, or restocked if confirmed)
    server.eventually("/v1/products/MUG-1", &guest, |p| p["available"] == 10).await;
    // A cancelled order cannot be cancelled again: a business rule, so 409.
    let (status, problem) = server
        .call("POST", &format!("/v1/orders/{order_id}/cancel"), Some(&guest), Some(json!({})))
        .await;
    assert_eq!((status, &problem["type"]), (409, &json!("/problems/order-cancelled")), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_roles_and_ownership_are_enforced() {
    let server = Server::start();
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;
    let (alice, alice_id) = server.guest().await;
    let (bob, _) = server.guest().await;
    let cart = server.open_cart(&alice).await;
    let item = format!("/v1/carts/{cart}/items/MUG-1");
    server.call("PUT", &item, Some(&alice), Some(json!({ "quantity": 1 }))).await;
    let checkout = json!({ "shipping_address": address(), "payment_token": "tok_visa" });
    let (_, placed) = server
        .call("POST", &format!("/v1/carts/{cart}/checkout"), Some(&alice), Some(checkout))
        .await;
    let order = format!("/v1/orders/{}", placed["id"].as_str().expect("order id"));

    // No token: 401 with a bearer challenge, as problem JSON.
    let response = server.send("POST", "/v1/carts", None, None, &[]).await;
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"ordo\"");
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    // A forged token (signed with another secret): 401.
    let forged = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiIsImlzcyI6Im9yZG8iLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6NDEwMjQ0NDgwMH0.c2lnbmVkIHdpdGggYW5vdGhlciBzZWNyZXQ";
    let (status, _) = server.call("GET", &order, Some(forged), None).await;
    assert_eq!(status, 401);
    // A customer on an admin endpoint: 403.
    let (status, problem) = server
        .call("POST", "/v1/products/MUG-1/stock", Some(&alice), Some(json!({ "quantity": 5 })))
        .await;
    assert_eq!((status, &problem["type"]), (403, &json!("/problems/forbidden")));
    let (status, _) = server.call("GET", "/v1/admin/projections", Some(&alice), None).await;
    assert_eq!(status, 403);
    let (status, projections) =
        server.call("GET", "/v1/admin/projections", Some(&admin), None).await;
    assert_eq!(status, 200, "{projections}");
    let names: Vec<&str> = projections["projections"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["catalogue", "carts", "orders"]);
    // Once the payment process has confirmed the order, its stream has several events.
    server.eventually(&order, &admin, |o| o["status"] == "confirmed").await;
    let stream = format!("order-{}", placed["id"].as_str().expect("order id"));
    let (status, page) = server
        .call("GET", &format!("/v1/admin/streams/{stream}/events?limit=1"), Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"][0]["type"], "OrderPlaced");
    assert_eq!(page["events"][0]["headers"]["actor"], alice_id.as_str());
    assert_eq!(page["next_from_version"], 1, "more than one event, so a next page: {page}");
    let (status, _) =
        server.call("GET", &format!("/v1/admin/streams/{stream}/events"), Some(&bob), None).await;
    assert_eq!(status, 403);
    // Another customer's order and cart do not exist for Bob; her history is forbidden.
    let (status, _) = server.call("GET", &order, Some(&bob), None).await;
    assert_eq!(status, 404);
    let (status, _) =
        server.call("POST", &format!("{order}/cancel"), Some(&bob), Some(json!({}))).await;
    assert_eq!(status, 404);
    let (status, _) = server.call("PUT", &item, Some(&bob), Some(json!({ "quantity": 2 }))).await;
    assert_eq!(status, 404);
    let (status, _) =
        server.call("GET", &format!("/v1/customers/{alice_id}/orders"), Some(&bob), None).await;
    assert_eq!(status, 403);
    // The owner and an admin see it.
    let (status, _) =
        server.call("GET", &format!("{order}?min_position=0"), Some(&alice), None).await;
    assert_eq!(status, 200);
    let (status, _) = server.call("GET", &order, Some(&admin), None).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_with_the_same_idempotency_key_takes_effect_once() {
    let server = Server::start();
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;

    // Stock received twice under one key counts once.
    let receive = |key: &'static str, quantity: u32| {
        let (server, admin) = (&server, &admin);
        async move {
            server
                .send(
                    "POST",
                    "/v1/products/MUG-1/stock",
                    Some(admin),
                    Some(json!({ "quantity": quantity })),
                    &[("Idempotency-Key", key)],
                )
                .await
        }
    };
    let first = receive("delivery-7", 5).await;
    assert_eq!(first.status().as_u16(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let again = receive("delivery-7", 5).await;
    assert_eq!(again.status().as_u16(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.expect("json"), first, "the first response, replayed");
    // The same key with another body is refused and changes nothing.
    let other = receive("delivery-7", 50).await;
    assert_eq!(other.status().as_u16(), 422);
    // An empty key is refused before anything runs.
    let empty = receive("", 5).await;
    assert_eq!(empty.status().as_u16(), 400);
    let (_, product) = server
        .call("GET", &format!("/v1/products/MUG-1?min_position={}", position(&first)), None, None)
        .await;
    assert_eq!(product["available"], 15, "10 + 5, once: {product}");

    // A checkout retried with its key answers with the same order, and there is one order.
    let (guest, _) = server.guest().await;
    let cart = server.open_cart(&guest).await;
    server
        .call(
            "PUT",
            &format!("/v1/carts/{cart}/items/MUG-1"),
            Some(&guest),
            Some(json!({ "quantity": 1 })),
        )
        .await;
    let checkout = || {
        let (server, guest, cart) = (&server, &guest, &cart);
        async move {
            let body = json!({ "shipping_address": address(), "payment_token": "tok_visa" });
            let path = format!("/v1/carts/{cart}/checkout");
            let response = server
                .send("POST", &path, Some(guest), Some(body), &[("Idempotency-Key", "pay-1")])
                .await;
            (response.status().as_u16(), response.json::<Value>().await.expect("json"))
        }
    };
    let (status, placed) = checkout().await;
    assert_eq!(status, 201, "{placed}");
    assert_eq!(checkout().await, (201, placed.clone()));
    let path = format!("/v1/me/orders?min_position={}", position(&placed));
    let (_, history) = server.call("GET", &path, Some(&guest), None).await;
    assert_eq!(history["orders"].as_array().map(Vec::len), Some(1), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_shoppers_racing_for_the_last_units_get_exactly_that_many() {
    // Given 5 units and 24 shoppers, each with a cart
    let server = Server::start();
    let admin = server.admin();
    server.stock_product(&admin, "LAST-1", "Limited print", 9_900, 5).await;
    let mut shoppers = Vec::new();
    for _ in 0..24 {
        let (token, _) = server.guest().await;
        let cart = server.open_cart(&token).await;
        shoppers.push((token, cart));
    }

    // When all of them add one unit at the same moment
    let server = std::sync::Arc::new(server);
    let mut attempts = tokio::task::JoinSet::new();
    for (token, cart) in shoppers {
        let server = server.clone();
        attempts.spawn(async move {
            let path = format!("/v1/carts/{cart}/items/LAST-1");
            server.call("PUT", &path, Some(&token), Some(json!({ "quantity": 1 }))).await
        });
    }
    let results = attempts.join_all().await;

    // Then exactly 5 succeed, the rest are told the stock ran out
    let won: Vec<_> = results.iter().filter(|(status, _)| *status == 200).collect();
    let lost: Vec<_> = results.iter().filter(|(status, _)| *status == 409).collect();
    assert_eq!((won.len(), lost.len()), (5, 19), "{results:?}");
    assert!(lost
        .iter()
        .all(|(_, p)| p["detail"].as_str().is_some_and(|d| d.contains("insufficient stock"))));
    let last = won.iter().map(|(_, r)| position(r)).max().expect("winners");
    let (_, product) =
        server.call("GET", &format!("/v1/products/LAST-1?min_position={last}"), None, None).await;
    assert_eq!(product["available"], 0, "{product}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_problem_json_and_changes_nothing() {
    let server = Server::start();
    let admin = server.admin();
    let expect_problem = |status: u16, body: &Value, expected: u16| {
        assert_eq!(status, expected, "{body}");
        assert_eq!(body["status"], expected, "{body}");
        assert!(body["type"].as_str().is_some_and(|t| t.starts_with("/problems/")), "{body}");
    };
    // A body over the limit: 413 before anything is parsed.
    let huge = json!({ "sku": "X", "name": "x".repeat(100_000) });
    let (status, body) = server.call("POST", "/v1/products", Some(&admin), Some(huge)).await;
    expect_problem(status, &body, 413);
    // Malformed JSON and out-of-range values: 400.
    let (status, body) =
        server.call("POST", "/v1/products", Some(&admin), Some(json!({ "sku": 1 }))).await;
    expect_problem(status, &body, 400);
    let bad_price =
        json!({ "sku": "B-1", "name": "B", "category": "c", "brand": "b", "price_minor": 0 });
    let (status, body) = server.call("POST", "/v1/products", Some(&admin), Some(bad_price)).await;
    expect_problem(status, &body, 400);
    let (status, body) = server.call("GET", "/v1/products?limit=1000", None, None).await;
    expect_problem(status, &body, 400);
    // Unknown paths and methods.
    let (status, body) = server.call("GET", "/v1/nothing-here", None, None).await;
    expect_problem(status, &body, 404);
    let (status, body) = server.call("PATCH", "/v1/products", None, None).await;
    expect_problem(status, &body, 405);
    // Nothing was listed along the way.
    let (status, page) = server.call("GET", "/v1/products", None, None).await;
    assert_eq!((status, &page["total"]), (200, &json!(0)), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_queries_answer_503_and_commands_keep_working() {
    // Given a server on a Redis the test controls
    let redis_dir = tempfile::tempdir().expect("temp dir");
    let mut redis = PrivateRedis::start(redis_dir.path(), false).expect("redis-server");
    let server = Server::start_with(Options { redis_url: Some(redis.url()), ..Options::default() });
    let admin = server.admin();
    server.stock_product(&admin, "MUG-1", "Stoneware mug", 1_250, 10).await;

    // When Redis goes away
    redis.stop();

    // Then queries say so with Retry-After, and commands still land in the event store
    let response = server.send("GET", "/v1/products/MUG-1", None, None, &[]).await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, receipt) = server
        .call("POST", "/v1/products/MUG-1/stock", Some(&admin), Some(json!({ "quantity": 5 })))
        .await;
    assert_eq!(status, 200, "{receipt}");

    // and once Redis is back, the read side catches up with what happened meanwhile
    let _redis = PrivateRedis::start(redis_dir.path(), false).expect("redis-server again");
    let path = format!("/v1/products/MUG-1?min_position={}", position(&receipt));
    let mut product = Value::Null;
    for _ in 0..100 {
        let (status, body) = server.call("GET", &path, None, None).await;
        if status == 200 {
            product = body;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(product["available"], 15, "{product}");
}

//! Several `ordo serve` instances on one PostgreSQL store and one Redis: every effect exactly
//! once while the instance running the checkout process is killed mid-load, and a holder that
//! was paused past its lease steps down instead of acting twice (ADR 0012).
//!
//! What is checked comes from the log itself (read straight from PostgreSQL) and from Redis,
//! never from the servers' own answers alone.

use ordo_projections::views::{CartView, OrderView, ProductView};
use ordo_tests::cluster::*;
use ordo_tests::{address, Server, Signal};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one shopper's visit left behind.
#[derive(Default)]
struct Visit {
    /// Every 2xx command receipt: (stream, version).
    receipts: Vec<(String, u64)>,
    order: Option<(String, &'static str)>,
    cart: String,
}

fn receipt(body: &Value) -> (String, u64) {
    let stream = body["stream"].as_str().expect("receipt stream").to_owned();
    (stream, body["version"].as_u64().expect("receipt version"))
}

/// A shopper spread over the instances: each step on the next one. With `card`, checks out
/// (keyed), then retries the same keyed request on yet another instance and must get the
/// same order back; without, leaves the cart to expire.
async fn visit(servers: Vec<Arc<Server>>, n: usize, card: Option<&'static str>) -> Visit {
    let on = |step: usize| servers[(n + step) % servers.len()].clone();
    let (token, _) = on(0).guest().await;
    let (status, cart) = on(1).call("POST", "/v1/carts", Some(&token), None).await;
    assert_eq!(status, 201, "{cart}");
    let mut visit =
        Visit { cart: cart["id"].as_str().expect("cart").to_owned(), ..Visit::default() };
    visit.receipts.push(receipt(&cart));
    let sku = SKUS[n % SKUS.len()];
    let item = format!("/v1/carts/{}/items/{sku}", visit.cart);
    let (status, line) =
        on(2).call("PUT", &item, Some(&token), Some(json!({ "quantity": 1 }))).await;
    assert_eq!(status, 200, "{line}");
    visit.receipts.push(receipt(&line));
    let Some(card) = card else { return visit };
    let checkout = json!({ "shipping_address": address(), "payment_token": card });
    let path = format!("/v1/carts/{}/checkout", visit.cart);
    let key = format!("checkout-{n}");
    let headers = [("idempotency-key", key.as_str())];
    let first = on(3).send("POST", &path, Some(&token), Some(checkout.clone()), &headers).await;
    assert_eq!(first.status(), 201);
    let placed: Value = first.json().await.expect("json");
    // The client's retry (its answer was lost, say) lands on a different instance.
    let again = on(4).send("POST", &path, Some(&token), Some(checkout), &headers).await;
    assert_eq!(again.status(), 201);
    assert_eq!(
        again.headers().get("idempotent-replayed").map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let replayed: Value = again.json().await.expect("json");
    assert_eq!(replayed["id"], placed["id"], "the retry got the first order back");
    visit.receipts.push(receipt(&placed));
    visit.order = Some((placed["id"].as_str().expect("order").to_owned(), sku));
    visit
}

async fn shoppers(servers: &[Arc<Server>], from: usize, count: usize, buying: bool) -> Vec<Visit> {
    let mut running = tokio::task::JoinSet::new();
    for n in from..from + count {
        let card = buying.then_some(CARDS[n % CARDS.len()]);
        running.spawn(visit(servers.to_vec(), n, card));
    }
    let mut visits = Vec::new();
    while let Some(visit) = running.join_next().await {
        visits.push(visit.expect("shopper finished"));
    }
    visits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_lose_nothing_and_repeat_nothing_when_the_checkout_holder_is_killed() {
    checkout_holder_killed(Shop::new()).await;
}

/// The same, with leases, checkpoints and idempotency records in Redis (as on KurrentDB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinated_in_redis_three_instances_lose_nothing_and_repeat_nothing_when_the_checkout_holder_is_killed(
) {
    checkout_holder_killed(Shop::coordinated_by("redis")).await;
}

async fn checkout_holder_killed(shop: Shop) {
    // Given three instances on one PostgreSQL and one Redis, every role taken
    let mut nodes: Vec<Option<Arc<Server>>> =
        (0..3).map(|n| Some(Arc::new(shop.start(n)))).collect();
    let first = nodes[0].clone().expect("node 0");
    let admin = first.admin();
    all_roles_held(&first, &admin, None).await;
    let mut received: HashMap<&str, u32> = HashMap::new();
    for sku in SKUS {
        first.stock_product(&admin, sku, "Stoneware mug", 1_250, STOCK).await;
        received.insert(sku, STOCK);
    }
    let everyone: Vec<Arc<Server>> = nodes.iter().flatten().cloned().collect();

    // When shoppers check out across all three (approving, declining and slow cards, every
    // checkout retried on another instance), some carts are left to expire,
    let mut visits = shoppers(&everyone, 0, 12, true).await;
    visits.extend(shoppers(&everyone, 100, 6, false).await);
    // and the instance holding the checkout role is killed mid-load, before those carts fall due
    let holder = all_roles_held(&first, &admin, None).await;
    let killed: usize = holder.trim_start_matches("node-").parse().expect("node name");
    nodes[killed].take().expect("holder running").signal(Signal::SIGKILL);
    let killed_at = Instant::now();
    let survivors: Vec<Arc<Server>> = nodes.iter().flatten().cloned().collect();
    let second = survivors[0].clone();
    let loaded = async {
        let visits = shoppers(&survivors, 200, 12, true).await;
        // Stock arrives meanwhile.
        for sku in SKUS {
            let path = format!("/v1/products/{sku}/stock");
            let (status, body) =
                second.call("POST", &path, Some(&admin), Some(json!({ "quantity": 7 }))).await;
            assert_eq!(status, 200, "{body}");
        }
        visits
    };
    visits.extend(loaded.await);
    for sku in SKUS {
        *received.get_mut(sku).expect("sku") += 7;
    }
    // Then another instance takes the checkout role within the lease's lifetime and a retry,
    let taken_by = all_roles_held(&second, &admin, Some(&holder)).await;
    let takeover = killed_at.elapsed();
    assert!(takeover < Duration::from_secs(10), "takeover took {takeover:?}");
    assert_ne!(taken_by, holder);
    // and the killed instance comes back later and joins in.
    nodes[killed] = Some(Arc::new(shop.start(killed)));
    let everyone: Vec<Arc<Server>> = nodes.iter().flatten().cloned().collect();
    visits.extend(shoppers(&everyone, 300, 6, true).await);

    let store = shop.store().await;
    // Every command answered 2xx has its events in the store,
    for visit in &visits {
        for (name, version) in &visit.receipts {
            let events = stream(&store, name).await;
            assert!(events.iter().any(|e| e.version == *version), "{name} lacks version {version}");
        }
    }
    // every order placed once, and settled exactly once, with at most one authorization,
    let orders: Vec<(String, &str)> = visits.iter().filter_map(|v| v.order.clone()).collect();
    let log = whole_log(&store).await;
    assert_eq!(
        count(&log, "OrderPlaced"),
        orders.len(),
        "one order per checkout, retries included"
    );
    settles("orders settling", Duration::from_secs(30), || async {
        let mut open = Vec::new();
        for (order, _) in &orders {
            let events = stream(&store, &format!("order-{order}")).await;
            let settled = count(&events, "OrderConfirmed") + count(&events, "OrderCancelled");
            assert!(settled <= 1, "order {order} settled twice: {:?}", types(&events));
            if settled == 0 {
                open.push(order.clone());
            }
        }
        open
    })
    .await;
    let mut confirmed: HashMap<&str, u32> = HashMap::new();
    for (order, sku) in &orders {
        let payment = stream(&store, &format!("payment-{order}")).await;
        assert!(count(&payment, "PaymentAuthorized") <= 1, "{order}: {:?}", types(&payment));
        assert_eq!(count(&payment, "PaymentRequested"), 1, "{order}: {:?}", types(&payment));
        let events = stream(&store, &format!("order-{order}")).await;
        if count(&events, "OrderConfirmed") == 1 {
            *confirmed.entry(sku).or_default() += 1;
        }
    }
    // carts that fell due while the checkout role's holder was dead expired,
    let abandoned: Vec<&str> =
        visits.iter().filter(|v| v.order.is_none()).map(|v| v.cart.as_str()).collect();
    settles("abandoned carts expiring", Duration::from_secs(20), || async {
        let mut open = Vec::new();
        for cart in &abandoned {
            let events = stream(&store, &format!("cart-{cart}")).await;
            assert!(count(&events, "CartExpired") <= 1, "{cart}: {:?}", types(&events));
            if count(&events, "CartExpired") == 0 {
                open.push(cart.to_string());
            }
        }
        open
    })
    .await;
    // the integration stream holds each public event exactly once, none missing,
    settles("integration events", Duration::from_secs(20), || async {
        let published = published_once(&shop.redis.url());
        let mut missing = Vec::new();
        for (order, _) in &orders {
            let kinds: HashSet<&str> = published
                .values()
                .filter(|(_, id)| id == order)
                .map(|(kind, _)| kind.as_str())
                .collect();
            let settled = kinds.contains("order.confirmed") || kinds.contains("order.cancelled");
            if !kinds.contains("order.placed") || !settled {
                missing.push(format!("{order}: {kinds:?}"));
            }
        }
        missing
    })
    .await;
    // every role's lag returns to 0, and the stock came back (held units released or sold),
    settles("roles catching up", Duration::from_secs(20), || async {
        let (status, body) = second.call("GET", "/v1/admin/roles", Some(&admin), None).await;
        assert_eq!(status, 200, "{body}");
        let roles = body["roles"].as_array().expect("roles").clone();
        roles.iter().filter(|r| r["lag_events"] != 0).map(|r| r.to_string()).collect()
    })
    .await;
    for sku in SKUS {
        let (status, product) =
            second.call("GET", &format!("/v1/products/{sku}"), None, None).await;
        assert_eq!(status, 200, "{product}");
        let expected = received[sku] - confirmed.get(sku).copied().unwrap_or(0);
        assert_eq!(product["available"], expected, "{sku}: {product}");
    }
    // and the read models equal a clean rebuild.
    equals_a_clean_rebuild::<OrderView>(&store, &shop.redis.url()).await;
    equals_a_clean_rebuild::<ProductView>(&store, &shop.redis.url()).await;
    equals_a_clean_rebuild::<CartView>(&store, &shop.redis.url()).await;
    // The checkout process's checkpoint lives where the instances were told to keep it, and
    // only there: the takeover continued from it.
    let in_store = store.process_checkpoint("checkout").await.expect("store answers");
    let mut redis =
        redis::Client::open(shop.redis.url()).expect("url").get_connection().expect("redis");
    let in_redis: Option<u64> = redis::cmd("HGET")
        .arg("ordo:shared:checkpoints")
        .arg("checkout")
        .query(&mut redis)
        .expect("hget");
    match shop.coordination {
        "redis" => assert!(in_store.is_none() && in_redis.is_some(), "{in_store:?} {in_redis:?}"),
        _ => assert!(in_store.is_some() && in_redis.is_none(), "{in_store:?} {in_redis:?}"),
    }
}

fn log_says(path: &Path, what: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|log| log.contains(what))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_holder_paused_past_its_lease_steps_down_and_applies_nothing_twice() {
    holder_paused(Shop::new()).await;
}

/// The same, with leases, checkpoints and idempotency records in Redis (as on KurrentDB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinated_in_redis_a_holder_paused_past_its_lease_steps_down_and_applies_nothing_twice()
{
    holder_paused(Shop::coordinated_by("redis")).await;
}

async fn holder_paused(shop: Shop) {
    // Given two instances; the first holds every role
    let paused = Arc::new(shop.start(0));
    let admin = paused.admin();
    all_roles_held(&paused, &admin, None).await;
    let other = Arc::new(shop.start(1));
    for sku in SKUS {
        paused.stock_product(&admin, sku, "Stoneware mug", 1_250, STOCK).await;
    }
    // and a slow payment in flight in its checkout process,
    let mut visits = shoppers(std::slice::from_ref(&paused), 0, 3, true).await;
    // when it is paused (SIGSTOP) past its lease and the other takes over and sells on,
    paused.signal(Signal::SIGSTOP);
    let resumed = async {
        all_roles_held(&other, &admin, Some("node-0")).await;
        let visits = shoppers(std::slice::from_ref(&other), 10, 6, true).await;
        paused.signal(Signal::SIGCONT);
        visits
    };
    let more = tokio::time::timeout(Duration::from_secs(30), resumed).await;
    if more.is_err() {
        paused.signal(Signal::SIGCONT);
    }
    visits.extend(more.expect("the other instance took over and served"));
    // then the resumed instance says it stepped down,
    let log = shop.log(0);
    settles("the old holder stepping down", Duration::from_secs(10), || async {
        match log_says(&log, "stepped down") {
            true => vec![],
            false => vec![std::fs::read_to_string(&log).unwrap_or_default()],
        }
    })
    .await;
    // both serve on, and nothing was applied twice.
    visits.extend(shoppers(&[paused.clone(), other.clone()], 20, 4, true).await);
    let store = shop.store().await;
    let orders: Vec<String> = visits.iter().filter_map(|v| v.order.clone()).map(|o| o.0).collect();
    settles("orders settling", Duration::from_secs(30), || async {
        let mut open = Vec::new();
        for order in &orders {
            let events = stream(&store, &format!("order-{order}")).await;
            let settled = count(&events, "OrderConfirmed") + count(&events, "OrderCancelled");
            assert!(settled <= 1, "order {order} settled twice: {:?}", types(&events));
            let payment = stream(&store, &format!("payment-{order}")).await;
            assert!(count(&payment, "PaymentAuthorized") <= 1, "{order}: {:?}", types(&payment));
            if settled == 0 {
                open.push(order.clone());
            }
        }
        open
    })
    .await;
    settles("integration events", Duration::from_secs(20), || async {
        let published = published_once(&shop.redis.url());
        orders
            .iter()
            .filter(|order| {
                !published.values().any(|(kind, id)| id == *order && kind == "order.placed")
            })
            .cloned()
            .collect()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_share_keyed_requests_and_never_decide_on_another_instances_old_state() {
    keyed_requests_shared(Shop::new()).await;
}

/// The same, with leases, checkpoints and idempotency records in Redis (as on KurrentDB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinated_in_redis_instances_share_keyed_requests_and_never_decide_on_another_instances_old_state(
) {
    keyed_requests_shared(Shop::coordinated_by("redis")).await;
}

async fn keyed_requests_shared(shop: Shop) {
    // Given two instances, and a product both have seen
    let (a, b) = (Arc::new(shop.start(0)), Arc::new(shop.start(1)));
    let admin = a.admin();
    a.stock_product(&admin, "MUG-0", "Stoneware mug", 1_250, STOCK).await;
    let (token, _) = a.guest().await;
    let first = a.open_cart(&token).await;
    let line = json!({ "quantity": 1 });
    let (status, body) = a
        .call("PUT", &format!("/v1/carts/{first}/items/MUG-0"), Some(&token), Some(line.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    // When staff reprice it on the other instance
    let price = json!({ "price_minor": 999 });
    let (status, body) = b.call("PUT", "/v1/products/MUG-0/price", Some(&admin), Some(price)).await;
    assert_eq!(status, 200, "{body}");
    // Then a new line on the first instance is priced at the new price, not its cached one
    let second = a.open_cart(&token).await;
    let (status, cart) =
        a.call("PUT", &format!("/v1/carts/{second}/items/MUG-0"), Some(&token), Some(line)).await;
    assert_eq!(status, 200, "{cart}");
    let store = shop.store().await;
    let events = stream(&store, &format!("cart-{second}")).await;
    let added = events.iter().rfind(|e| e.event_type == "ItemQuantitySet").expect("line set");
    let (status, view) = a
        .call(
            "GET",
            &format!("/v1/carts/{second}?min_position={}", added.position.0),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["lines"][0]["unit_price_minor"], 999, "{view}");

    // When the same keyed checkout is sent to both instances at once, ten times over
    let mut orders = HashSet::new();
    for n in 0..10 {
        let cart = a.open_cart(&token).await;
        let path = format!("/v1/carts/{cart}/items/MUG-0");
        let (status, body) =
            a.call("PUT", &path, Some(&token), Some(json!({ "quantity": 1 }))).await;
        assert_eq!(status, 200, "{body}");
        let checkout = json!({ "shipping_address": address(), "payment_token": "tok_visa" });
        let path = format!("/v1/carts/{cart}/checkout");
        let key = format!("twice-{n}");
        let headers = [("idempotency-key", key.as_str())];
        let (left, right) = tokio::join!(
            a.send("POST", &path, Some(&token), Some(checkout.clone()), &headers),
            b.send("POST", &path, Some(&token), Some(checkout.clone()), &headers),
        );
        // Then each pair is one checkout: both answer with it, or one says "in progress"
        let mut placed = Vec::new();
        for response in [left, right] {
            match response.status().as_u16() {
                201 => placed.push(response.json::<Value>().await.expect("json")["id"].clone()),
                409 => {
                    let problem: Value = response.json().await.expect("json");
                    assert_eq!(problem["type"], "/problems/request-in-progress", "{problem}");
                }
                other => {
                    panic!("unexpected {other}: {}", response.text().await.unwrap_or_default())
                }
            }
        }
        assert!(!placed.is_empty(), "pair {n}: neither placed the order");
        assert!(placed.windows(2).all(|w| w[0] == w[1]), "pair {n}: {placed:?}");
        orders.insert(placed[0].as_str().expect("id").to_owned());
    }
    assert_eq!(orders.len(), 10);
    let log = whole_log(&store).await;
    assert_eq!(count(&log, "OrderPlaced"), 10, "one order per key");
}

//! The soak of several instances, outside `just test`: three instances for five minutes, one
//! SIGKILLed every 30 s, figures in one JSON line (ADR 0012).

use ordo_tests::cluster::*;
use ordo_tests::{address, Server};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shopper for the soak: like a client behind a load balancer, each request goes to a live
/// instance and, if that one dies under it, again (same `Idempotency-Key`) to another.
struct Balanced {
    bases: Arc<std::sync::Mutex<Vec<Option<String>>>>,
    http: reqwest::Client,
}

impl Balanced {
    async fn call(
        &self,
        n: usize,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        key: &str,
    ) -> (u16, Value) {
        let mut last = String::new();
        // 30 s: a request cut off by a kill holds its key for 10 s (409 meanwhile).
        for attempt in 0..600 {
            let base = {
                let bases = self.bases.lock().expect("bases");
                let live: Vec<String> = bases.iter().flatten().cloned().collect();
                live[(n + attempt) % live.len()].clone()
            };
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut request =
                self.http.request(method, format!("{base}{path}")).header("idempotency-key", key);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            let (status, body) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
                }
                Err(error) => (0, Value::String(error.to_string())),
            };
            // Retried: no answer (the instance died), unavailable, or the same key still in
            // flight on an instance that died with it (until its claim lapses).
            let in_flight = status == 409 && body["type"] == "/problems/request-in-progress";
            if status != 0 && status != 502 && status != 503 && !in_flight {
                return (status, body);
            }
            last = format!("{status} {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{method} {path}: no instance answered: {last}");
    }
}

/// Three instances for `ORDO_SOAK_SECS` (default 300): shoppers check out all along while a
/// random instance is SIGKILLed and restarted every 30 s. Prints one JSON line of figures:
/// `ORDO_BIN=target/release/ordo cargo test --test several_instances_soak -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "five minutes of load: run by hand"]
async fn soak_three_instances_with_one_killed_every_30s() {
    let seconds: u64 =
        std::env::var("ORDO_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    // `ORDO_SOAK_COORDINATION=redis`: leases and shared state in Redis, as on KurrentDB.
    let shop = match std::env::var("ORDO_SOAK_COORDINATION").as_deref() {
        Ok("redis") => Shop::coordinated_by("redis"),
        _ => Shop::new(),
    };
    // Carts live as in a shop: a shopper retrying across a kill must not see theirs lapse.
    let mut nodes: Vec<Option<Server>> =
        (0..3).map(|n| Some(shop.start_with_cart_ttl(n, "15m"))).collect();
    let admin = nodes[0].as_ref().expect("node").admin();
    all_roles_held(nodes[0].as_ref().expect("node"), &admin, None).await;
    for sku in SKUS {
        nodes[0]
            .as_ref()
            .expect("node")
            .stock_product(&admin, sku, "Stoneware mug", 1_250, 1_000_000)
            .await;
    }
    let bases = Arc::new(std::sync::Mutex::new(
        nodes.iter().map(|n| n.as_ref().map(|s| s.base.clone())).collect::<Vec<_>>(),
    ));
    let client = Arc::new(Balanced { bases: bases.clone(), http: reqwest::Client::new() });
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut shoppers = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, stop) = (client.clone(), stop.clone());
        shoppers.spawn(async move {
            let mut orders = Vec::new();
            let mut n = worker * 1_000_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let (status, session) =
                    client.call(n, "POST", "/v1/sessions", None, None, &format!("s-{n}")).await;
                assert_eq!(status, 201, "{session}");
                let token = session["token"].as_str().expect("token").to_owned();
                let (status, cart) = client
                    .call(n, "POST", "/v1/carts", Some(&token), None, &format!("c-{n}"))
                    .await;
                assert_eq!(status, 201, "{cart}");
                let cart = cart["id"].as_str().expect("cart").to_owned();
                let path = format!("/v1/carts/{cart}/items/{}", SKUS[n % 3]);
                let (status, body) = client
                    .call(
                        n,
                        "PUT",
                        &path,
                        Some(&token),
                        Some(json!({ "quantity": 1 })),
                        &format!("i-{n}"),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                let checkout =
                    json!({ "shipping_address": address(), "payment_token": CARDS[n % 3] });
                let path = format!("/v1/carts/{cart}/checkout");
                let (status, placed) = client
                    .call(n, "POST", &path, Some(&token), Some(checkout), &format!("o-{n}"))
                    .await;
                assert_eq!(status, 201, "{placed}");
                orders.push(placed["id"].as_str().expect("order").to_owned());
            }
            orders
        });
    }
    let started = Instant::now();
    let mut takeovers = Vec::new();
    let mut round = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(
            Duration::from_secs(30)
                .min(Duration::from_secs(seconds).saturating_sub(started.elapsed())),
        )
        .await;
        if started.elapsed() >= Duration::from_secs(seconds) {
            break;
        }
        round += 1;
        // Every other round the checkout role's holder, else any instance.
        let roles = holders(nodes.iter().flatten().next().expect("node"), &admin).await;
        let victim = match round % 2 {
            1 => roles["checkout"].0.trim_start_matches("node-").parse().expect("node name"),
            _ => (round * 7 + round / 3) % 3,
        };
        let name = format!("node-{victim}");
        bases.lock().expect("bases")[victim] = None;
        let held_before: Vec<&String> =
            roles.iter().filter(|(_, (h, _))| *h == name).map(|(r, _)| r).collect();
        nodes[victim].take().expect("running").kill();
        let killed_at = Instant::now();
        let asker = nodes.iter().flatten().next().expect("a survivor");
        if !held_before.is_empty() {
            all_roles_held(asker, &admin, Some(&name)).await;
            takeovers.push(killed_at.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let restarted = shop.start_with_cart_ttl(victim, "15m");
        bases.lock().expect("bases")[victim] = Some(restarted.base.clone());
        nodes[victim] = Some(restarted);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut orders = Vec::new();
    while let Some(done) = shoppers.join_next().await {
        orders.extend(done.expect("shopper"));
    }
    let store = shop.store().await;
    let mut unsettled = orders.clone();
    let drained = Instant::now();
    let (mut twice, mut max_authorizations) = (0, 0);
    while !unsettled.is_empty() && drained.elapsed() < Duration::from_secs(60) {
        let mut still = Vec::new();
        for order in unsettled {
            let payment = stream(&store, &format!("payment-{order}")).await;
            max_authorizations = max_authorizations.max(count(&payment, "PaymentAuthorized"));
            let events = stream(&store, &format!("order-{order}")).await;
            match count(&events, "OrderConfirmed") + count(&events, "OrderCancelled") {
                0 => still.push(order),
                1 => {}
                _ => twice += 1,
            }
        }
        unsettled = still;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let asker = nodes.iter().flatten().next().expect("node");
    let drained_at = Instant::now();
    settles("roles catching up", Duration::from_secs(120), || async {
        let (_, body) = asker.call("GET", "/v1/admin/roles", Some(&admin), None).await;
        body["roles"]
            .as_array()
            .expect("roles")
            .iter()
            .filter(|r| r["lag_events"] != 0)
            .map(|r| r.to_string())
            .collect()
    })
    .await;
    let catch_up = drained_at.elapsed();
    let published = published_once(&shop.redis.url());
    let placed: HashSet<&str> = published
        .values()
        .filter(|(kind, _)| kind == "order.placed")
        .map(|(_, order)| order.as_str())
        .collect();
    let unpublished = orders.iter().filter(|o| !placed.contains(o.as_str())).count();
    takeovers.sort();
    let percentile = |p: f64| {
        takeovers
            .get(((takeovers.len() as f64 - 1.0) * p).round() as usize)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    println!(
        "{}",
        json!({
            "seconds": seconds, "kills": round, "takeovers": takeovers.len(),
            "takeover_p50_s": percentile(0.5), "takeover_p99_s": percentile(0.99),
            "takeover_max_s": takeovers.last().map_or(0.0, |d| d.as_secs_f64()),
            "orders": orders.len(), "orders_lost": unsettled.len(), "settled_twice": twice,
            "max_authorizations_per_order": max_authorizations,
            "integration_events": published.len(), "orders_unpublished": unpublished,
            "final_lag_events": 0, "catch_up_after_load_s": catch_up.as_secs_f64(),
        })
    );
    for order in unsettled.iter().take(5) {
        let events = types(&stream(&store, &format!("order-{order}")).await).join(",");
        let payment = types(&stream(&store, &format!("payment-{order}")).await).join(",");
        eprintln!("unsettled {order}: order [{events}] payment [{payment}]");
    }
    assert!(unsettled.is_empty(), "{} orders never settled", unsettled.len());
    assert_eq!(twice, 0);
    assert!(max_authorizations <= 1);
    assert_eq!(unpublished, 0);
}

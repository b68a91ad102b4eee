//! The checkout process in process: given an order placed over an embedded store, when the
//! processes follow the log, then the order ends confirmed (or cancelled) with its stock
//! committed (or released). No HTTP, no Redis.

mod support;

use ordo_application::leases::Lease;
use ordo_application::payments::Simulator;
use ordo_application::processes::state::{FileState, ProcessState};
use ordo_application::processes::{ProcessConfig, Processes};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::watch;

/// Places an order for two mugs paid with `token`, runs the processes until `stream` has an
/// event of type `until`, and returns the shop for `then`.
async fn checkout_then_follow(token: &str, until: &str) -> (Shopfront, String) {
    let mut shop = two_mugs_in_the_cart().await;
    let placed = shop.shop.check_out("cart-1", address(), token.into(), &shopper(None)).await;
    let order = format!("order-{}", placed.expect("placed").id);
    shop.when_starts(&[PRODUCT, &order]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = FileState::open(&dir.path().join("processes.redb")).expect("state");
    let processes = Arc::new(Processes::new(
        shop.shop.clone(),
        Arc::new(Simulator::default()),
        Arc::new(ProcessState::File(file)),
        ProcessConfig::default(),
    ));
    let (stop, stopping) = watch::channel(false);
    let running = tokio::spawn(processes.run(Lease::local("checkout"), stopping));
    let started = Instant::now();
    while !shop.events(&order).await.iter().any(|t| t == until) {
        assert!(started.elapsed() < Duration::from_secs(10), "{order} never reached {until}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (the product's follow-up comes right after the order's event)
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(true).expect("stop");
    running.await.expect("joined").expect("stopped cleanly");
    (shop, order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_payment_confirms_the_order_and_commits_its_stock() {
    let (shop, order) = checkout_then_follow("tok_visa", "OrderConfirmed").await;
    shop.then(&[
        (&order, &["OrderPaymentAuthorized", "OrderConfirmed"]),
        (PRODUCT, &["ReservationCommitted"]),
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_payment_cancels_the_order_and_releases_its_stock() {
    let (shop, order) = checkout_then_follow("tok_declined", "OrderCancelled").await;
    shop.then(&[
        (&order, &["OrderPaymentDeclined", "OrderCancelled"]),
        (PRODUCT, &["ReservationReleased"]),
    ])
    .await;
}

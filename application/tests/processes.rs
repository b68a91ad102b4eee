//! The checkout process in process: given an order placed over an embedded store, when the
//! processes follow the log, then the order ends confirmed (or cancelled) with its stock
//! committed (or released). No HTTP, no Redis.

mod support;

use ordo_application::leases::Lease;
use ordo_application::payments::Simulator;
use ordo_application::processes::state::{FileState, ProcessState};
use ordo_application::processes::{ProcessConfig, ProcessError, Processes, CHECKPOINT};
use ordo_domain::Sku;
use ordo_eventstore::{Direction, EventStore, StreamName};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::rendezvous::{Rendezvous, WAIT};
use support::*;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The processes running in the background over a shop, on a fresh state file.
struct Running {
    state: Arc<ProcessState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ProcessError>>,
    _dir: TempDir,
}

impl Running {
    fn start<S: EventStore>(shop: &Shopfront<S>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = FileState::open(&dir.path().join("processes.redb")).expect("state");
        let state = Arc::new(ProcessState::File(file));
        let processes = Arc::new(Processes::new(
            shop.shop.clone(),
            Arc::new(Simulator::default()),
            state.clone(),
            ProcessConfig::default(),
        ));
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(processes.run(Lease::local("checkout"), stopping));
        Running { state, stop, task, _dir: dir }
    }

    async fn stop(self) {
        self.stop.send(true).expect("stop");
        self.task.await.expect("joined").expect("stopped cleanly");
    }
}

/// Places an order for two mugs paid with `token`, runs the processes until `stream` has an
/// event of type `until`, and returns the shop for `then`.
async fn checkout_then_follow(token: &str, until: &str) -> (Shopfront, String) {
    let mut shop = two_mugs_in_the_cart().await;
    let placed = shop.shop.check_out("cart-1", address(), token.into(), &shopper(None)).await;
    let order = format!("order-{}", placed.expect("placed").id);
    shop.when_starts(&[PRODUCT, &order]).await;
    let running = Running::start(&shop);
    let started = Instant::now();
    while !shop.events(&order).await.iter().any(|t| t == until) {
        assert!(started.elapsed() < Duration::from_secs(10), "{order} never reached {until}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (the product's follow-up comes right after the order's event)
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.stop().await;
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
    // The authorization confirmed the order in the same step: both events were caused by the
    // payment's authorization and sit next to each other in the log (before, the confirmation
    // was a step of its own, caused by the order's event).
    let stream = StreamName::new(order).expect("stream");
    let events = shop.shop.store().read_stream(&stream, 1, Direction::Forward, 2).await;
    let [authorized, confirmed] = &events.expect("read")[..] else { panic!("two events") };
    assert_eq!(authorized.metadata.causation_id, confirmed.metadata.causation_id);
    assert_eq!(confirmed.position.0, authorized.position.0 + 1);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_checkpoint_lost_in_a_crash_when_the_log_is_handled_again_nothing_is_repeated() {
    // Given an order the process saw through to confirmed, and every stream as it then was
    let (shop, order) = checkout_then_follow("tok_visa", "OrderConfirmed").await;
    let payment = order.replacen("order-", "payment-", 1);
    let streams = [order.as_str(), payment.as_str(), PRODUCT, CART];
    let mut before = Vec::new();
    for stream in streams {
        before.push(shop.events(stream).await);
    }
    // When the process starts over from a state file that lost every save (worse than a crash
    // between two synced saves can do) and follows the log to its end
    // (the process follows orders, payments and carts; the log ends with the product's event)
    let mut end = 0;
    for stream in [order.as_str(), payment.as_str(), CART] {
        let name = StreamName::new(stream).expect("stream");
        let last = shop.store.read_stream(&name, u64::MAX, Direction::Backward, 1).await;
        end = end.max(last.expect("read").first().map_or(0, |e| e.position.0));
    }
    let running = Running::start(&shop);
    let started = Instant::now();
    while running.state.checkpoint(CHECKPOINT).await.expect("checkpoint") < Some(end) {
        assert!(started.elapsed() < Duration::from_secs(10), "the process never reached {end}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;
    // Then every reaction found its effect already there: no stream has a new event
    for (stream, was) in streams.iter().zip(before) {
        assert_eq!(shop.events(stream).await, was, "{stream} after handling the log again");
    }
    assert!(!shop.events(&payment).await.is_empty(), "the order's payment stream is {payment}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stock_of_an_order_of_several_products_is_committed_together() {
    // Given an order of a mug and a teapot placed, on a store that holds each stock commit
    // until the other one arrives (or for a second, and then counts it as alone)
    let rendezvous = Rendezvous::new("ReservationCommitted", 2);
    let shop = Shopfront::seeing(|store| OneStreamPerCommit::with(store, rendezvous));
    let mut shop = with_two_mugs_in_the_cart(shop).await;
    let teapot = "product-TEA-1";
    shop = shop.given(teapot, stocked(Sku::parse("TEA-1").expect("sku"), 5)).await;
    shop.shop.set_item("cart-1", "TEA-1", 1, &shopper(None)).await.expect("teapot in the cart");
    let placed = shop.shop.check_out("cart-1", address(), "tok_visa".into(), &shopper(None)).await;
    let order = format!("order-{}", placed.expect("placed").id);
    shop.when_starts(&[PRODUCT, teapot, &order]).await;

    // When the processes confirm it
    let running = Running::start(&shop);
    let started = Instant::now();
    for product in [PRODUCT, teapot] {
        while !shop.events(product).await.iter().any(|t| t == "ReservationCommitted") {
            assert!(started.elapsed() < Duration::from_secs(10), "{product} never committed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    running.stop().await;

    // Then both products' stock was committed, once each, and neither waited for the other
    shop.then(&[
        (&order, &["OrderPaymentAuthorized", "OrderConfirmed"]),
        (PRODUCT, &["ReservationCommitted"]),
        (teapot, &["ReservationCommitted"]),
    ])
    .await;
    assert_eq!(shop.shop.store().before.alone(), 0, "a commit waited {:?} for the other", WAIT);
}

//! The use cases, in process over an embedded store: given streams, when a use case runs, then
//! these events per stream.

mod support;

use ordo_application::shop::checkout;
use ordo_application::AppError;
use ordo_domain::cart::{CartCheckedOut, CartError, CartEvent, ItemQuantitySet};
use ordo_domain::order::OrderCommand;
use ordo_domain::plan::plan_checkout;
use ordo_domain::product::ProductCommand;
use ordo_domain::product::{ProductDelisted, ProductError, ProductEvent, ProductListed};
use ordo_domain::OrderId;
use ordo_eventstore::clock::now;
use ordo_eventstore::codec::AnyEvent;
use support::*;

/// The cart checked out by someone else, behind the shop's cached view of it.
fn checked_out_elsewhere() -> Vec<AnyEvent> {
    let order_id = OrderId::parse("ord-elsewhere").expect("order");
    vec![AnyEvent::Cart(CartEvent::CheckedOut(CartCheckedOut { order_id, at: now() }))]
}

#[tokio::test]
async fn adding_to_a_cart_holds_the_stock_and_records_the_line_in_one_commit() {
    let mut shop =
        Shopfront::new().given(PRODUCT, stocked_mug(10)).await.given(CART, open_cart(0)).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    let done = shop.shop.set_item("cart-1", "MUG-1", 2, &shopper(None)).await.expect("added");
    shop.then(&[(PRODUCT, &["StockReserved"]), (CART, &["ItemQuantitySet"])]).await;
    // The hold, then the line, next to each other in the log; the answer waits for both.
    let hold = shop.last(PRODUCT).await.position;
    let line = shop.last(CART).await.position;
    assert_eq!(line.0, hold.0 + 1);
    assert_eq!(done.position, line.0);
}

#[tokio::test]
async fn a_line_for_a_cart_that_moved_is_planned_again_on_the_cart_as_it_is() {
    // Given a cart this instance has cached as empty, given a mug by another writer meanwhile
    let mut shop =
        Shopfront::new().given(PRODUCT, stocked_mug(10)).await.given(CART, open_cart(0)).await;
    shop.shop.carts().inspect("cart-1", |_, _| ()).await.expect("cached");
    shop.append(CART, open_cart(1).split_off(1)).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    // When the shopper sets two mugs
    shop.shop.set_item("cart-1", "MUG-1", 2, &shopper(None)).await.expect("set");
    // Then the line is decided again on the cart as it is, and committed once with its hold
    shop.then(&[(PRODUCT, &["StockReserved"]), (CART, &["ItemQuantitySet"])]).await;
    let quantity = shop.shop.carts().inspect("cart-1", |_, c| c.0.clone()).await.expect("cart");
    assert_eq!(quantity.expect("open").lines[&mug()].quantity, 2);
}

#[tokio::test]
async fn a_line_the_cart_refuses_takes_no_hold() {
    // Given a cart this instance has cached as open, checked out meanwhile by another writer
    let mut shop =
        Shopfront::new().given(PRODUCT, stocked_mug(10)).await.given(CART, open_cart(0)).await;
    shop.shop.carts().inspect("cart-1", |_, _| ()).await.expect("cached");
    shop.append(CART, checked_out_elsewhere()).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    // When the shopper adds a mug
    let refused = shop.shop.set_item("cart-1", "MUG-1", 2, &shopper(None)).await;
    // Then the cart refuses, and no hold was ever written
    assert!(matches!(refused, Err(AppError::Cart(CartError::CheckedOut(_)))), "{refused:?}");
    shop.then(&[(PRODUCT, &[]), (CART, &[])]).await;
}

#[tokio::test]
async fn on_a_store_of_one_stream_per_commit_the_hold_comes_first_then_the_line() {
    let mut shop = Shopfront::one_stream_per_commit()
        .given(PRODUCT, stocked_mug(10))
        .await
        .given(CART, open_cart(0))
        .await;
    shop.when_starts(&[PRODUCT, CART]).await;
    shop.shop.set_item("cart-1", "MUG-1", 2, &shopper(None)).await.expect("added");
    shop.then(&[(PRODUCT, &["StockReserved"]), (CART, &["ItemQuantitySet"])]).await;
}

#[tokio::test]
async fn on_a_store_of_one_stream_per_commit_a_line_the_cart_refuses_gives_the_hold_back() {
    // Given a cart this instance has cached as open, checked out meanwhile by another writer
    let mut shop = Shopfront::one_stream_per_commit()
        .given(PRODUCT, stocked_mug(10))
        .await
        .given(CART, open_cart(0))
        .await;
    shop.shop.carts().inspect("cart-1", |_, _| ()).await.expect("cached");
    shop.append(CART, checked_out_elsewhere()).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    // When the shopper adds a mug
    let refused = shop.shop.set_item("cart-1", "MUG-1", 2, &shopper(None)).await;
    // Then the cart refuses, and the hold taken first is released again
    assert!(matches!(refused, Err(AppError::Cart(CartError::CheckedOut(_)))), "{refused:?}");
    shop.then(&[(PRODUCT, &["StockReserved", "ReservationReleased"]), (CART, &[])]).await;
}

#[tokio::test]
async fn on_a_store_of_one_stream_per_commit_a_changed_line_the_cart_refuses_restores_the_hold() {
    let mut shop = with_two_mugs_in_the_cart(Shopfront::one_stream_per_commit()).await;
    shop.shop.carts().inspect("cart-1", |_, _| ()).await.expect("cached");
    shop.append(CART, checked_out_elsewhere()).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    let refused = shop.shop.set_item("cart-1", "MUG-1", 5, &shopper(None)).await;
    assert!(matches!(refused, Err(AppError::Cart(CartError::CheckedOut(_)))), "{refused:?}");
    // (held 5, then back to 2)
    shop.then(&[(PRODUCT, &["StockReserved", "StockReserved"]), (CART, &[])]).await;
    let held = shop
        .shop
        .products()
        .inspect("MUG-1", |_, p| p.reservations.values().map(|r| r.quantity).sum::<u32>())
        .await
        .expect("product");
    assert_eq!(held, 2);
}

#[tokio::test]
async fn removing_a_line_releases_its_hold_in_the_same_commit() {
    let mut shop = two_mugs_in_the_cart().await;
    shop.when_starts(&[PRODUCT, CART]).await;
    shop.shop.remove_item("cart-1", "MUG-1", &shopper(None)).await.expect("removed");
    shop.then(&[(PRODUCT, &["ReservationReleased"]), (CART, &["ItemRemoved"])]).await;
    let released = shop.last(PRODUCT).await.position;
    assert_eq!(shop.last(CART).await.position.0, released.0 + 1);
}

#[tokio::test]
async fn removing_a_line_whose_hold_lapsed_removes_the_line_alone() {
    // Given a line whose hold was already released (it lapsed and was cleaned up)
    let mut shop = two_mugs_in_the_cart().await;
    shop.append(PRODUCT, vec![hold_released()]).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    // When the shopper removes the line
    shop.shop.remove_item("cart-1", "MUG-1", &shopper(None)).await.expect("removed");
    // Then the line goes, and there is nothing to release
    shop.then(&[(PRODUCT, &[]), (CART, &["ItemRemoved"])]).await;
}

#[tokio::test]
async fn on_a_store_of_one_stream_per_commit_the_line_goes_first_then_the_hold() {
    let mut shop = with_two_mugs_in_the_cart(Shopfront::one_stream_per_commit()).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    shop.shop.remove_item("cart-1", "MUG-1", &shopper(None)).await.expect("removed");
    shop.then(&[(PRODUCT, &["ReservationReleased"]), (CART, &["ItemRemoved"])]).await;
    let released = shop.last(PRODUCT).await.position;
    assert!(shop.last(CART).await.position < released);
}

#[tokio::test]
async fn not_enough_stock_is_refused_before_anything_is_written() {
    let mut shop =
        Shopfront::new().given(PRODUCT, stocked_mug(1)).await.given(CART, open_cart(0)).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    let refused = shop.shop.set_item("cart-1", "MUG-1", 2, &shopper(None)).await;
    assert!(
        matches!(refused, Err(AppError::Product(ProductError::InsufficientStock { .. }))),
        "{refused:?}"
    );
    shop.then(&[(PRODUCT, &[]), (CART, &[])]).await;
}

#[tokio::test]
async fn another_customers_cart_is_not_found() {
    let mut shop =
        Shopfront::new().given(PRODUCT, stocked_mug(10)).await.given(CART, open_cart(0)).await;
    shop.when_starts(&[PRODUCT, CART]).await;
    let refused = shop.shop.set_item("cart-1", "MUG-1", 1, &stranger()).await;
    assert!(matches!(refused, Err(AppError::NotFound { .. })), "{refused:?}");
    shop.then(&[(PRODUCT, &[]), (CART, &[])]).await;
}

#[tokio::test]
async fn checkout_renews_the_holds_places_the_order_and_closes_the_cart() {
    let mut shop = two_mugs_in_the_cart().await;
    let order = order_stream();
    shop.when_starts(&[PRODUCT, CART, &order]).await;
    let done = shop
        .shop
        .check_out("cart-1", address(), "tok_visa".into(), &shopper(None))
        .await
        .expect("checked out");
    assert_eq!(format!("order-{}", done.id), order);
    shop.then(&[
        (PRODUCT, &["StockReserved"]),
        (&order, &["OrderPlaced"]),
        (CART, &["CartCheckedOut"]),
    ])
    .await;
}

#[tokio::test]
async fn checkout_places_the_order_and_closes_the_cart_in_one_commit() {
    let mut shop = two_mugs_in_the_cart().await;
    let order = order_stream();
    shop.when_starts(&[PRODUCT, CART, &order]).await;
    shop.shop.check_out("cart-1", address(), "tok".into(), &shopper(None)).await.expect("done");
    // The cart's close and the order next to each other in the log (one commit, the close
    // first: the order rides on the cart's command)
    let placed = shop.last(&order).await.position;
    let closed = shop.last(CART).await.position;
    assert_eq!(placed.0, closed.0 + 1);
}

#[tokio::test]
async fn a_checkout_the_cart_refuses_places_no_order() {
    // Given a cart this instance has cached as open, checked out meanwhile by another writer
    let mut shop = two_mugs_in_the_cart().await;
    shop.shop.carts().inspect("cart-1", |_, _| ()).await.expect("cached");
    shop.append(CART, checked_out_elsewhere()).await;
    let order = order_stream();
    shop.when_starts(&[CART, &order]).await;
    // When the shopper checks out on the stale view
    let refused = shop.shop.check_out("cart-1", address(), "tok".into(), &shopper(None)).await;
    // Then the cart refuses, and no order exists without its closed cart
    assert!(matches!(refused, Err(AppError::Cart(CartError::CheckedOut(_)))), "{refused:?}");
    shop.then(&[(&order, &[]), (CART, &[])]).await;
}

#[tokio::test]
async fn on_a_store_of_one_stream_per_commit_checkout_places_then_closes() {
    let mut shop = with_two_mugs_in_the_cart(Shopfront::one_stream_per_commit()).await;
    let order = order_stream();
    shop.when_starts(&[PRODUCT, CART, &order]).await;
    shop.shop.check_out("cart-1", address(), "tok".into(), &shopper(None)).await.expect("done");
    shop.then(&[
        (PRODUCT, &["StockReserved"]),
        (&order, &["OrderPlaced"]),
        (CART, &["CartCheckedOut"]),
    ])
    .await;
}

#[tokio::test]
async fn a_keyed_checkout_retried_after_a_crash_finishes_without_doing_anything_twice() {
    // Given a keyed checkout whose first attempt renewed the hold and placed the order, then
    // crashed before closing the cart
    let mut shop = two_mugs_in_the_cart().await;
    let request = shopper(Some(42));
    let order_id = ordo_application::ids::order_id_for(&cart_id());
    let order = format!("order-{order_id}");
    let cart = shop.shop.carts().inspect("cart-1", |_, c| c.clone()).await.expect("cart");
    let names = [(mug(), "Stoneware mug".to_owned())].into();
    let plan =
        plan_checkout(&cart, &names, order_id.clone(), address(), "tok".into(), now(), 60_000)
            .expect("planned");
    for (step, (sku, hold)) in plan.renew.into_iter().enumerate() {
        let context = request.context(checkout::FIRST_HOLD + step);
        let renew = ProductCommand::Reserve(hold);
        shop.shop.products().execute(sku.as_str(), &renew, &context).await.expect("renewed");
    }
    let place = OrderCommand::Place(plan.place);
    let context = request.context(checkout::PLACE);
    shop.shop.orders().execute(order_id.as_str(), &place, &context).await.expect("placed");
    shop.when_starts(&[PRODUCT, CART, &order]).await;
    // When the client retries with the same key (a moment later, so every decision differs
    // in its timestamps)
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let done = shop.shop.check_out("cart-1", address(), "tok".into(), &request).await;
    // Then the retry finds the hold and the order in place and only closes the cart
    assert_eq!(done.expect("finished").id, order_id.as_str());
    shop.then(&[(PRODUCT, &[]), (&order, &[]), (CART, &["CartCheckedOut"])]).await;
}

#[tokio::test]
async fn a_keyed_checkout_that_went_through_answers_its_retry_with_the_same_order() {
    // Given a keyed checkout that went through, whose answer was lost with its server
    let mut shop = two_mugs_in_the_cart().await;
    let request = shopper(Some(7));
    let first = shop.shop.check_out("cart-1", address(), "tok".into(), &request).await;
    let first = first.expect("checked out");
    let order = format!("order-{}", first.id);
    shop.when_starts(&[PRODUCT, CART, &order]).await;
    // When the client retries with the same key on another server
    let again = shop.shop.check_out("cart-1", address(), "tok".into(), &request).await;
    // Then it gets the same order back and nothing is appended
    assert_eq!(again.expect("answered again").id, first.id);
    shop.then(&[(PRODUCT, &[]), (&order, &[]), (CART, &[])]).await;
    // while a new request (another key) is refused: that cart is checked out
    let other = shop.shop.check_out("cart-1", address(), "tok".into(), &shopper(Some(8))).await;
    assert!(other.is_err(), "{other:?}");
    let none = shop.shop.check_out("cart-1", address(), "tok".into(), &shopper(None)).await;
    assert!(none.is_err(), "{none:?}");
}

/// The same events for another product, `sku`.
fn for_product(sku: &str, events: Vec<AnyEvent>) -> Vec<AnyEvent> {
    let sku = ordo_domain::Sku::parse(sku).expect("sku");
    events
        .into_iter()
        .map(|event| match event {
            AnyEvent::Product(ProductEvent::Listed(listed)) => {
                AnyEvent::Product(ProductEvent::Listed(ProductListed {
                    sku: sku.clone(),
                    ..listed
                }))
            }
            AnyEvent::Cart(CartEvent::ItemQuantitySet(line)) => {
                AnyEvent::Cart(CartEvent::ItemQuantitySet(ItemQuantitySet {
                    sku: sku.clone(),
                    ..line
                }))
            }
            other => other,
        })
        .collect()
}

/// A lamp's stream.
const LAMP: &str = "product-LAMP-1";

/// Two mugs and a lamp in the shopper's cart, each held for it.
async fn mugs_and_a_lamp_in_the_cart() -> Shopfront {
    let lamp_line = for_product("LAMP-1", open_cart(1)).split_off(1);
    let mut lamp = for_product("LAMP-1", stocked_mug(5));
    lamp.push(held_for_cart(1));
    two_mugs_in_the_cart().await.given(CART, lamp_line).await.given(LAMP, lamp).await
}

#[tokio::test]
async fn checkout_renews_every_lines_hold_together() {
    let mut shop = mugs_and_a_lamp_in_the_cart().await;
    let order = order_stream();
    shop.when_starts(&[PRODUCT, LAMP, CART, &order]).await;
    let done = shop.shop.check_out("cart-1", address(), "tok".into(), &shopper(None)).await;
    assert!(done.is_ok(), "{done:?}");
    shop.then(&[
        (PRODUCT, &["StockReserved"]),
        (LAMP, &["StockReserved"]),
        (&order, &["OrderPlaced"]),
        (CART, &["CartCheckedOut"]),
    ])
    .await;
}

#[tokio::test]
async fn a_checkout_with_a_refused_hold_places_no_order_and_cuts_no_renewal_short() {
    // Given the lamp delisted since it was put in the cart
    let delisted = vec![AnyEvent::Product(ProductEvent::Delisted(ProductDelisted { at: now() }))];
    let mut shop = mugs_and_a_lamp_in_the_cart().await.given(LAMP, delisted).await;
    let order = order_stream();
    shop.when_starts(&[PRODUCT, LAMP, CART, &order]).await;
    // When the cart is checked out
    let refused = shop.shop.check_out("cart-1", address(), "tok".into(), &shopper(None)).await;
    // Then the lamp's refusal is the answer; the mug's renewal, run alongside (though the lamp
    // sorts first), went through (harmless: a hold the cart already had); no order, cart open
    assert!(matches!(refused, Err(AppError::Product(ProductError::Delisted))), "{refused:?}");
    shop.then(&[(PRODUCT, &["StockReserved"]), (LAMP, &[]), (&order, &[]), (CART, &[])]).await;
}

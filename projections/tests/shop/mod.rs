//! The shop the read-model tests share: a private `redis-server`, an embedded store, and a
//! scripted history of products, carts and orders written through the command path.
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use ordo_domain::cart::{self, Cart, CartCommand};
use ordo_domain::order::{self, Actor, Address, NewOrderLine, Order, OrderCommand};
use ordo_domain::product::{self, Product, ProductCommand};
use ordo_domain::{CartId, Currency, CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};
use ordo_eventstore::command::{CommandContext, Repository};
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore, EventStore, Position};
use ordo_projections::rebuild::rebuild;
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::{Runner, RunnerConfig};
use ordo_projections::views::{CartView, OrderView, ProductView};
use std::sync::Arc;
use std::time::Duration;

pub struct Shop {
    pub _dir: tempfile::TempDir,
    pub _redis: PrivateRedis,
    pub store: Arc<EmbeddedStore>,
    pub client: redis::Client,
}

impl Shop {
    /// How many times Redis ran `command` since it started.
    pub async fn calls(&self, command: &str) -> u64 {
        self.command_stat(command, "calls").await
    }

    /// One counter of `INFO commandstats` for `command`.
    pub async fn command_stat(&self, command: &str, stat: &str) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut self.connection().await)
            .await
            .expect("info");
        let prefix = format!("cmdstat_{command}:");
        let line = info.lines().find_map(|line| line.strip_prefix(&prefix)).unwrap_or_default();
        line.split(',')
            .find_map(|pair| pair.strip_prefix(stat)?.strip_prefix('='))
            .map_or(0, |count| count.parse().expect("a count"))
    }

    /// Removes a key, as if an older Ordo had never written it.
    pub async fn delete(&self, key: String) {
        let _: () = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut self.connection().await)
            .await
            .expect("del");
    }

    /// Removes one field of a hash, as if an older Ordo had never written it.
    pub async fn forget(&self, key: String, field: &str) {
        let _: () = redis::cmd("HDEL")
            .arg(key)
            .arg(field)
            .query_async(&mut self.connection().await)
            .await
            .expect("hdel");
    }

    /// Places an order of one mug for `customer` at `at` (Unix ms), straight on the order's
    /// stream (no cart): for tests that need orders placed at the same time.
    pub async fn place_order(&self, customer: &str, order_id: &str, at: i64) {
        let orders = Repository::<Order, _>::new(self.store.clone(), 10);
        let place = OrderCommand::Place(order::PlaceOrder {
            order_id: OrderId::parse(order_id).expect("valid"),
            customer_id: CustomerId::parse(customer).expect("valid"),
            reservation_id: ReservationId::parse(format!("res-{order_id}")).expect("valid"),
            lines: vec![NewOrderLine {
                sku: Sku::parse("MUG-1").expect("valid"),
                name: "Stoneware Mug".into(),
                quantity: 1,
                unit_price: eur(1_250),
            }],
            shipping_address: address(),
            payment_token: "tok_approve".into(),
            placed_at: Timestamp(at),
        });
        orders.execute(order_id, &place, &ctx()).await.expect("placed");
    }

    /// Projects `V` into version `version` until position `until` (the head if `None`).
    pub async fn project<V: ordo_projections::views::View>(
        &self,
        version: u32,
        config: RunnerConfig,
        until: Option<Position>,
    ) {
        let until = match until {
            Some(p) => Some(p),
            None => self.store.last_position().await.expect("head"),
        };
        let mut runner =
            Runner::<V, _>::new(self.store.clone(), self.connection().await, version, config)
                .await
                .expect("runner");
        runner.run(until, |_| {}).await.expect("applied");
    }
    /// Rebuilds `V` into a new version with no grace period.
    pub async fn rebuild<V: ordo_projections::views::View>(
        &self,
    ) -> ordo_projections::rebuild::RebuildReport {
        self.rebuild_with_grace::<V>(Duration::ZERO).await
    }

    /// Rebuilds `V` into a new version, removing the old one after `grace`.
    pub async fn rebuild_with_grace<V: ordo_projections::views::View>(
        &self,
        grace: Duration,
    ) -> ordo_projections::rebuild::RebuildReport {
        rebuild::<V, _>(
            self.store.clone(),
            self.connection().await,
            RunnerConfig::default(),
            grace,
            |_, _| {},
        )
        .await
        .expect("rebuilt")
    }

    pub async fn connection(&self) -> redis::aio::ConnectionManager {
        self.client.get_connection_manager().await.expect("redis connection")
    }

    pub async fn project_all(&self, config: RunnerConfig) {
        self.project::<OrderView>(1, config.clone(), None).await;
        self.project::<ProductView>(1, config.clone(), None).await;
        self.project::<CartView>(1, config, None).await;
    }
}

pub fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

pub fn ctx() -> CommandContext {
    CommandContext::default()
}

pub const HOUR: i64 = 3_600_000;

/// Where every scripted order goes.
pub fn address() -> Address {
    Address {
        name: "Ada".into(),
        line1: "1 Main St".into(),
        line2: String::new(),
        city: "Paris".into(),
        postal_code: "75001".into(),
        country: "FR".into(),
    }
}

/// Lists a product in the store currency, EUR.
pub fn list(
    sku: &str,
    name: &str,
    description: &str,
    category: &str,
    brand: &str,
    price: i64,
) -> ProductCommand {
    ProductCommand::List(product::ListProduct {
        sku: Sku::parse(sku).expect("valid sku"),
        name: name.into(),
        description: description.into(),
        category: category.into(),
        brand: brand.into(),
        price: eur(price),
        image_urls: vec![],
        store_currency: Currency::EUR,
        now: Timestamp(0),
    })
}

/// Six products, three customers, carts and orders in every status.
pub async fn scripted_shop() -> Shop {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis =
        PrivateRedis::start(&dir.path().join("redis"), false).expect("private redis-server");
    let client = redis::Client::open(redis.url()).expect("redis url");
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("events.redb"))).expect("store"),
    );
    let products = Repository::<Product, _>::new(store.clone(), 100);
    let carts = Repository::<Cart, _>::new(store.clone(), 100);
    let orders = Repository::<Order, _>::new(store.clone(), 100);

    let catalogue = [
        ("MUG-1", "Stoneware Mug", "kitchen", "Potter", 1_250, 10),
        ("MUG-2", "Enamel Camping Mug", "outdoor", "Trailhead", 900, 0),
        ("POT-1", "Teapot with infuser", "kitchen", "Potter", 3_500, 4),
        ("KET-1", "Kettle, stovetop", "kitchen", "Steelworks", 4_900, 2),
        ("TNT-1", "Two-person tent", "outdoor", "Trailhead", 15_900, 1),
        ("LMP-1", "Camping lamp", "outdoor", "Brightly", 2_200, 6),
    ];
    for (sku, name, category, brand, price, stock) in catalogue {
        let description =
            format!("{name}. Made to last; a favourite for tea lovers and campers alike.");
        let list = list(sku, name, &description, category, brand, price);
        products.execute(sku, &list, &ctx()).await.expect("listed");
        if stock > 0 {
            let receive = ProductCommand::ReceiveStock(product::ReceiveStock {
                quantity: stock,
                now: Timestamp(0),
            });
            products.execute(sku, &receive, &ctx()).await.expect("stocked");
        }
    }
    let delist = ProductCommand::Delist(product::DelistProduct { now: Timestamp(1) });
    products.execute("LMP-1", &delist, &ctx()).await.expect("delisted");

    // cus-a: five orders an hour apart; cus-b: one; each order from its own cart.
    let plan = [
        ("cus-a", "ord-a1", 1, "MUG-1", 2),
        ("cus-a", "ord-a2", 2, "POT-1", 1),
        ("cus-a", "ord-a3", 3, "MUG-1", 1),
        ("cus-a", "ord-a4", 4, "KET-1", 1),
        ("cus-a", "ord-a5", 5, "MUG-1", 3),
        ("cus-b", "ord-b1", 2, "TNT-1", 1),
    ];
    for (customer, order_id, hour, sku, quantity) in plan {
        let now = Timestamp(hour * HOUR);
        let cart_id = format!("cart-{order_id}");
        let open = CartCommand::Open(cart::OpenCart {
            cart_id: CartId::parse(&cart_id).expect("valid"),
            customer_id: CustomerId::parse(customer).expect("valid"),
            ttl_ms: 900_000,
            now,
        });
        carts.execute(&cart_id, &open, &ctx()).await.expect("cart");
        let price = products
            .inspect(sku, |_, p| p.listing.as_ref().map(|l| l.price))
            .await
            .expect("product")
            .expect("listed");
        let set = CartCommand::SetItemQuantity(cart::SetItemQuantity {
            sku: Sku::parse(sku).expect("valid"),
            quantity,
            unit_price: price,
            now,
        });
        carts.execute(&cart_id, &set, &ctx()).await.expect("item");
        let reserve = ProductCommand::Reserve(product::ReserveStock {
            reservation_id: ReservationId::parse(&cart_id).expect("valid"),
            quantity,
            expires_at: now.plus_millis(900_000),
            now,
        });
        products.execute(sku, &reserve, &ctx()).await.expect("reserved");
        let checkout = CartCommand::CheckOut(cart::CheckOut {
            order_id: OrderId::parse(order_id).expect("valid"),
            now,
        });
        carts.execute(&cart_id, &checkout, &ctx()).await.expect("checked out");
        let place = OrderCommand::Place(order::PlaceOrder {
            order_id: OrderId::parse(order_id).expect("valid"),
            customer_id: CustomerId::parse(customer).expect("valid"),
            reservation_id: ReservationId::parse(&cart_id).expect("valid"),
            lines: vec![NewOrderLine {
                sku: Sku::parse(sku).expect("valid"),
                name: sku.into(),
                quantity,
                unit_price: price,
            }],
            shipping_address: address(),
            payment_token: "tok_approve".into(),
            placed_at: now,
        });
        orders.execute(order_id, &place, &ctx()).await.expect("placed");
    }
    // Move some orders along: a2 confirmed, a3 shipped, a4 cancelled; a1, a5, b1 stay placed.
    for order_id in ["ord-a2", "ord-a3"] {
        let total = orders
            .inspect(order_id, |_, o| o.0.as_ref().map(|o| o.total))
            .await
            .expect("order")
            .expect("placed");
        let pay = OrderCommand::RecordPaymentAuthorized(order::RecordPaymentAuthorized {
            amount: total,
            at: Timestamp(6 * HOUR),
        });
        orders.execute(order_id, &pay, &ctx()).await.expect("paid");
        orders
            .execute(
                order_id,
                &OrderCommand::Confirm(order::ConfirmOrder { at: Timestamp(6 * HOUR) }),
                &ctx(),
            )
            .await
            .expect("confirmed");
    }
    let ship = OrderCommand::Ship(order::ShipOrder {
        carrier: "DHL".into(),
        tracking: "JD1".into(),
        at: Timestamp(7 * HOUR),
    });
    orders.execute("ord-a3", &ship, &ctx()).await.expect("shipped");
    let cancel = OrderCommand::Cancel(order::CancelOrder {
        reason: "changed mind".into(),
        by: Actor::System,
        at: Timestamp(7 * HOUR),
    });
    orders.execute("ord-a4", &cancel, &ctx()).await.expect("cancelled");
    // One open cart that is not checked out.
    let open = CartCommand::Open(cart::OpenCart {
        cart_id: CartId::parse("cart-open").expect("valid"),
        customer_id: CustomerId::parse("cus-c").expect("valid"),
        ttl_ms: 900_000,
        now: Timestamp(8 * HOUR),
    });
    carts.execute("cart-open", &open, &ctx()).await.expect("cart");
    let set = CartCommand::SetItemQuantity(cart::SetItemQuantity {
        sku: Sku::parse("POT-1").expect("valid"),
        quantity: 2,
        unit_price: eur(3_500),
        now: Timestamp(8 * HOUR),
    });
    carts.execute("cart-open", &set, &ctx()).await.expect("item");
    Shop { _dir: dir, _redis: redis, store, client }
}

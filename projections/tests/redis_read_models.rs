//! Read models against a real private `redis-server`: a scripted shop goes through the command
//! path into an embedded store, the projections run, and every query is checked.

use ordo_domain::cart::{self, Cart, CartCommand};
use ordo_domain::order::{self, Actor, Address, NewOrderLine, Order, OrderCommand};
use ordo_domain::product::{self, Product, ProductCommand};
use ordo_domain::{CartId, Currency, CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};
use ordo_eventstore::command::{CommandContext, Repository};
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore, EventStore, Position};
use ordo_projections::keys::Namespace;
use ordo_projections::query::{HistoryQuery, ReadModels, SearchQuery, SearchSort};
use ordo_projections::rebuild::{digest, rebuild};
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::{Runner, RunnerConfig};
use ordo_projections::views::{
    documents_key, CartView, OrderView, ProductListing, ProductView, View, DOCUMENT_FIELD,
};
use std::sync::Arc;
use std::time::Duration;

struct Shop {
    _dir: tempfile::TempDir,
    _redis: PrivateRedis,
    store: Arc<EmbeddedStore>,
    client: redis::Client,
}

impl Shop {
    /// Removes one field of a hash, as if an older Ordo had never written it.
    async fn forget(&self, key: String, field: &str) {
        let _: () = redis::cmd("HDEL")
            .arg(key)
            .arg(field)
            .query_async(&mut self.connection().await)
            .await
            .expect("hdel");
    }

    /// Projects `V` into version `version` until position `until` (the head if `None`).
    async fn project<V: ordo_projections::views::View>(
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
    async fn rebuild<V: ordo_projections::views::View>(
        &self,
    ) -> ordo_projections::rebuild::RebuildReport {
        self.rebuild_with_grace::<V>(Duration::ZERO).await
    }

    /// Rebuilds `V` into a new version, removing the old one after `grace`.
    async fn rebuild_with_grace<V: ordo_projections::views::View>(
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

    async fn connection(&self) -> redis::aio::ConnectionManager {
        self.client.get_connection_manager().await.expect("redis connection")
    }

    async fn project_all(&self, config: RunnerConfig) {
        self.project::<OrderView>(1, config.clone(), None).await;
        self.project::<ProductView>(1, config.clone(), None).await;
        self.project::<CartView>(1, config, None).await;
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

fn ctx() -> CommandContext {
    CommandContext::default()
}

const HOUR: i64 = 3_600_000;

/// Lists a product in the store currency, EUR.
fn list(
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
async fn scripted_shop() -> Shop {
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
            shipping_address: Address {
                name: "Ada".into(),
                line1: "1 Main St".into(),
                line2: String::new(),
                city: "Paris".into(),
                postal_code: "75001".into(),
                country: "FR".into(),
            },
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_answers_after_a_scripted_shop() {
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let reads = ReadModels::new(shop.connection().await);

    let head = shop.store.last_position().await.expect("head").expect("events");
    let status: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg("ordo:status:catalogue")
        .query_async(&mut shop.connection().await)
        .await
        .expect("status");
    assert_eq!(status.get("position"), Some(&head.0.to_string()));
    assert_eq!(
        (
            status.get("lag_events").map(String::as_str),
            status.get("last_error").map(String::as_str)
        ),
        (Some("0"), Some(""))
    );

    let order = reads.order("ord-a3").await.expect("query").expect("exists");
    assert_eq!(
        (order.status.as_str(), order.payment_status.as_str(), order.carrier.as_str()),
        ("shipped", "authorized", "DHL")
    );
    assert_eq!(order.total_minor, 1_250);
    assert!(reads.order("ord-none").await.expect("query").is_none());

    // History: newest first, paged with a cursor, filtered by status and by date.
    let page =
        |cursor: Option<String>| HistoryQuery { limit: 2, cursor, ..HistoryQuery::default() };
    let first = reads.order_history("cus-a", &page(None)).await.expect("history");
    let ids = |p: &ordo_projections::query::HistoryPage| {
        p.orders.iter().map(|o| o.order_id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), vec!["ord-a5", "ord-a4"]);
    let second =
        reads.order_history("cus-a", &page(first.next_cursor.clone())).await.expect("history");
    assert_eq!(ids(&second), vec!["ord-a3", "ord-a2"]);
    let third =
        reads.order_history("cus-a", &page(second.next_cursor.clone())).await.expect("history");
    assert_eq!((ids(&third), third.next_cursor), (vec!["ord-a1".to_owned()], None));
    let placed =
        HistoryQuery { status: Some("placed".into()), limit: 10, ..HistoryQuery::default() };
    assert_eq!(
        ids(&reads.order_history("cus-a", &placed).await.expect("history")),
        vec!["ord-a5", "ord-a1"]
    );
    let window = HistoryQuery {
        from: Some(2 * HOUR),
        to: Some(4 * HOUR),
        limit: 10,
        ..HistoryQuery::default()
    };
    assert_eq!(
        ids(&reads.order_history("cus-a", &window).await.expect("history")),
        vec!["ord-a4", "ord-a3", "ord-a2"]
    );
    assert_eq!(
        ids(&reads
            .order_history("cus-b", &HistoryQuery { limit: 10, ..Default::default() })
            .await
            .expect("history")),
        vec!["ord-b1"]
    );

    // Catalogue and search.
    let mug = reads.product("MUG-1").await.expect("query").expect("exists");
    assert_eq!(
        (mug.available, mug.listed),
        (4, true),
        "10 mugs, 6 held by three order reservations"
    );
    assert!(!reads.product("LMP-1").await.expect("query").expect("exists").listed);
    let search =
        |text: &str| SearchQuery { text: text.into(), limit: 10, ..SearchQuery::default() };
    let skus = |p: ordo_projections::query::SearchPage| {
        p.products.into_iter().map(|p| p.sku).collect::<Vec<_>>()
    };
    assert_eq!(
        skus(reads.search(&search("mug")).await.expect("search")),
        vec!["MUG-2", "MUG-1"],
        "ties by SKU, name matches first"
    );
    assert_eq!(
        skus(reads.search(&search("ena")).await.expect("search")),
        vec!["MUG-2"],
        "type-ahead: a prefix of 'enamel'"
    );
    assert!(
        skus(reads.search(&search("lamp")).await.expect("search")).is_empty(),
        "the delisted lamp is not found"
    );
    assert_eq!(
        skus(reads.search(&search("POTTER tea")).await.expect("search")),
        vec!["POT-1", "MUG-1"],
        "case-folded, every word must match, name outranks description"
    );
    let kitchen = SearchQuery {
        category: Some("Kitchen".into()),
        sort: SearchSort::PriceDesc,
        limit: 10,
        ..SearchQuery::default()
    };
    assert_eq!(
        skus(reads.search(&kitchen).await.expect("search")),
        vec!["KET-1", "POT-1", "MUG-1"]
    );
    let cheap_in_stock = SearchQuery {
        max_price: Some(3_500),
        in_stock: true,
        sort: SearchSort::PriceAsc,
        limit: 10,
        ..SearchQuery::default()
    };
    assert_eq!(
        skus(reads.search(&cheap_in_stock).await.expect("search")),
        vec!["MUG-1", "POT-1"],
        "MUG-2 has no stock"
    );
    let by_brand = SearchQuery {
        brand: Some("trailhead".into()),
        min_price: Some(1_000),
        limit: 10,
        ..SearchQuery::default()
    };
    assert_eq!(skus(reads.search(&by_brand).await.expect("search")), vec!["TNT-1"]);
    let paged = SearchQuery { sort: SearchSort::PriceAsc, limit: 2, ..SearchQuery::default() };
    let p1 = reads.search(&paged).await.expect("search");
    assert_eq!((p1.total, p1.next_cursor.clone()), (5, Some("2".to_owned())));
    let p3 =
        reads.search(&SearchQuery { cursor: Some("4".into()), ..paged }).await.expect("search");
    assert_eq!((skus(p3.clone()), p3.next_cursor), (vec!["TNT-1".to_owned()], None));
    assert!(skus(reads.search(&search("zebra")).await.expect("search")).is_empty());

    let cart = reads.cart("cart-open").await.expect("query").expect("exists");
    assert_eq!((cart.status.as_str(), cart.total_minor, cart.lines.len()), ("open", 7_000, 1));
    let checked_out = reads.cart("cart-ord-a1").await.expect("query").expect("exists");
    assert_eq!(
        (checked_out.status.as_str(), checked_out.order_id.as_str()),
        ("checked_out", "ord-a1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_documents_are_the_views_rendered_even_for_orders_written_before_documents() {
    // Given a projected shop, one of whose orders lost its rendered document (as if an older
    // Ordo had written it)
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let reads = ReadModels::new(shop.connection().await);
    let ns = reads.namespace(OrderView::PROJECTION).await.expect("namespace");
    shop.forget(OrderView::key(&ns, "ord-a4"), DOCUMENT_FIELD).await;

    // When the history is read as documents, page by page
    let page = |cursor: Option<String>| HistoryQuery { limit: 3, cursor, ..Default::default() };
    let views = reads.order_history("cus-a", &page(None)).await.expect("history");
    let first = reads.order_history_documents("cus-a", &page(None)).await.expect("history");
    let next = first.next_cursor.clone();
    let second = reads.order_history_documents("cus-a", &page(next)).await.expect("history");

    // Then each page holds the same orders, in the same order, as the typed history, each
    // rendered from its view (the one without a stored document too)
    let rendered: Vec<String> = views.orders.iter().map(OrderView::document).collect();
    assert_eq!(first.orders, rendered);
    assert!(first.orders[1].contains("\"order_id\":\"ord-a4\""));
    assert_eq!(first.next_cursor, views.next_cursor);
    assert_eq!(second.orders.len(), 2);
    assert_eq!(second.next_cursor, None);
    // and one order reads as its document with its customer, stored or not.
    for order_id in ["ord-a4", "ord-a5"] {
        let view = reads.order(order_id).await.expect("query").expect("exists");
        let expected = Some(("cus-a".to_owned(), view.document()));
        assert_eq!(reads.order_document(order_id).await.expect("query"), expected, "{order_id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_documents_are_the_listings_rendered_even_for_products_written_before_documents() {
    // Given a projected shop, one of whose products lost its rendered document (as if an older
    // Ordo had written it)
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let reads = ReadModels::new(shop.connection().await);
    let ns = reads.namespace(ProductView::PROJECTION).await.expect("namespace");
    shop.forget(documents_key(&ns), "POT-1").await;

    // When products are read and searched as documents
    // Then they are the listings rendered, a delisted or unknown product has none, and a
    // search page holds the same products as the typed search, in the same order
    for sku in ["MUG-1", "POT-1"] {
        let listing = reads.product(sku).await.expect("query").expect("exists");
        let document = reads.product_document(sku).await.expect("query");
        assert_eq!(document, Some(listing.document()), "{sku}");
    }
    assert_eq!(reads.product_document("LMP-1").await.expect("query"), None, "delisted");
    assert_eq!(reads.product_document("NONE-1").await.expect("query"), None);
    for sort in [SearchSort::PriceAsc, SearchSort::PriceDesc] {
        let all = SearchQuery { limit: 3, sort, ..SearchQuery::default() };
        let typed = reads.search(&all).await.expect("search");
        let documents = reads.search_documents(&all).await.expect("search");
        let rendered: Vec<String> = typed.products.iter().map(ProductListing::document).collect();
        assert_eq!(documents.products, rendered);
        assert_eq!(
            (documents.total, documents.total_is_exact, documents.next_cursor),
            (typed.total, typed.total_is_exact, typed.next_cursor)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_waits_for_its_own_write_then_gives_up_after_the_bound() {
    let shop = scripted_shop().await;
    let reads = ReadModels::new(shop.connection().await);
    let head = shop.store.last_position().await.expect("head").expect("events");
    let err = reads.wait_for("orders", head.0, Duration::from_millis(50)).await;
    assert!(err.is_err(), "nothing is projected yet");
    let store = shop.store.clone();
    let redis = shop.connection().await;
    let runner = tokio::spawn(async move {
        let mut runner = Runner::<OrderView, _>::new(store, redis, 1, RunnerConfig::default())
            .await
            .expect("runner");
        runner.run(Some(head), |_| {}).await
    });
    reads.wait_for("orders", head.0, Duration::from_secs(5)).await.expect("applied in time");
    runner.await.expect("task").expect("runner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_between_batches_ends_exactly_like_a_clean_rebuild() {
    let shop = scripted_shop().await;
    let head = shop.store.last_position().await.expect("head").expect("events");
    // Small batches, stopped (dropped) at several points and restarted from Redis's checkpoint.
    let small = RunnerConfig { batch_size: 5, ..RunnerConfig::default() };
    for stop in [head.0 / 4, head.0 / 2, head.0 * 3 / 4, head.0] {
        shop.project::<ProductView>(1, small.clone(), Some(Position(stop))).await;
    }
    shop.project::<ProductView>(2, RunnerConfig::default(), Some(head)).await;
    let mut con = shop.connection().await;
    let interrupted = digest(&mut con, &Namespace::new("catalogue", 1)).await.expect("digest");
    let rebuilt = digest(&mut con, &Namespace::new("catalogue", 2)).await.expect("digest");
    assert_eq!(interrupted, rebuilt);
    // And a runner whose cache can hold only two documents, so it keeps evicting and rereading.
    let tiny = RunnerConfig { batch_size: 3, cache_capacity: 2 };
    shop.project::<ProductView>(3, tiny, Some(head)).await;
    assert_eq!(digest(&mut con, &Namespace::new("catalogue", 3)).await.expect("digest"), rebuilt);

    // The same for orders, whose documents change status across batches.
    for stop in [head.0 / 3, head.0 * 2 / 3, head.0] {
        shop.project::<OrderView>(1, small.clone(), Some(Position(stop))).await;
    }
    shop.project::<OrderView>(2, RunnerConfig::default(), Some(head)).await;
    assert_eq!(
        digest(&mut con, &Namespace::new("orders", 1)).await.expect("digest"),
        digest(&mut con, &Namespace::new("orders", 2)).await.expect("digest")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilds_replay_time_leaves_out_the_grace_period() {
    let shop = scripted_shop().await;
    let grace = Duration::from_millis(1_500);
    let report = shop.rebuild_with_grace::<OrderView>(grace).await;
    assert!(report.elapsed >= grace);
    assert!(report.replayed_in < grace, "a few events replay well within the grace: {report:?}");
    assert!(report.elapsed - report.replayed_in >= grace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_fills_a_new_version_switches_and_removes_the_old_one() {
    let shop = scripted_shop().await;
    shop.project_all(RunnerConfig::default()).await;
    let mut con = shop.connection().await;
    let before = digest(&mut con, &Namespace::new("orders", 1)).await.expect("digest");
    let report = shop.rebuild::<OrderView>().await;
    assert_eq!(report.version, 2);
    assert!(report.removed_keys > 0);
    let active: u32 =
        redis::cmd("GET").arg("ordo:orders:active").query_async(&mut con).await.expect("active");
    assert_eq!(active, 2);
    assert_eq!(
        digest(&mut con, &Namespace::new("orders", 2)).await.expect("digest"),
        before,
        "same content, new version"
    );
    let old: Vec<String> =
        redis::cmd("KEYS").arg("ordo:orders:v1:*").query_async(&mut con).await.expect("keys");
    assert!(old.is_empty(), "old version removed: {old:?}");
    let reads = ReadModels::new(shop.connection().await);
    assert!(reads.order("ord-a1").await.expect("query").is_some(), "queries follow the switch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_resumes_by_itself_when_redis_comes_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("events.redb"))).expect("store"),
    );
    let products = Repository::<Product, _>::new(store.clone(), 10);
    let list = |sku: &str| list(sku, "Mug", "", "kitchen", "Potter", 100);
    products.execute("AAA-1", &list("AAA-1"), &ctx()).await.expect("listed");
    let redis_dir = dir.path().join("redis");
    let mut server = PrivateRedis::start(&redis_dir, true).expect("redis");
    let client = redis::Client::open(server.url()).expect("url");
    let con = client.get_connection_manager().await.expect("connection");
    let mut runner = Runner::<ProductView, _>::new(store.clone(), con, 1, RunnerConfig::default())
        .await
        .expect("runner");
    let first = store.last_position().await.expect("head");
    runner.run(first, |_| {}).await.expect("first product");

    server.stop();
    products
        .execute("BBB-1", &list("BBB-1"), &ctx())
        .await
        .expect("the write side does not need Redis");
    let target = store.last_position().await.expect("head");
    let task =
        tokio::spawn(async move { runner.run(target, |_| {}).await.map(|_| runner.checkpoint()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _server = PrivateRedis::start(&redis_dir, true).expect("redis again");
    let applied = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("resumed in time")
        .expect("task")
        .expect("runner");
    assert_eq!(applied, target);
    let reads = ReadModels::new(client.get_connection_manager().await.expect("connection"));
    assert!(reads.product("BBB-1").await.expect("query").is_some());
}

/// A catalogue big enough that searches take the walking paths (200+ matches), checked against
/// a plain model of filtering, sorting and paging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_agrees_with_a_model_on_a_large_catalogue() {
    let dir = tempfile::tempdir().expect("temp dir");
    let redis = PrivateRedis::start(&dir.path().join("redis"), false).expect("redis");
    let client = redis::Client::open(redis.url()).expect("url");
    let store = Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(dir.path().join("events.redb"))).expect("store"),
    );
    let products = Repository::<Product, _>::new(store.clone(), 1_000);
    struct P {
        sku: String,
        name: String,
        brand: &'static str,
        category: &'static str,
        price: i64,
        stock: u32,
    }
    let mut model = Vec::new();
    for i in 0..450 {
        let p = P {
            sku: format!("SKU-{i:04}"),
            name: format!(
                "{} {}",
                ["Blue", "Red", "Green"][i % 3],
                ["Mug", "Bowl", "Plate", "Cup", "Jug"][i % 5]
            ),
            brand: ["Potter", "Kiln", "Hearth"][i % 3 / 2 + i % 2],
            category: ["kitchen", "table"][i % 2],
            price: 100 + ((i * 37) % 500) as i64,
            stock: if i % 4 == 0 { 0 } else { 5 },
        };
        let list = list(&p.sku, &p.name, "", p.category, p.brand, p.price);
        products.execute(&p.sku, &list, &ctx()).await.expect("listed");
        if p.stock > 0 {
            let receive = ProductCommand::ReceiveStock(product::ReceiveStock {
                quantity: p.stock,
                now: Timestamp(0),
            });
            products.execute(&p.sku, &receive, &ctx()).await.expect("stocked");
        }
        model.push(p);
    }
    let target = store.last_position().await.expect("head");
    Runner::<ProductView, _>::new(
        store.clone(),
        client.get_connection_manager().await.expect("con"),
        1,
        RunnerConfig::default(),
    )
    .await
    .expect("runner")
    .run(target, |_| {})
    .await
    .expect("projected");
    let reads = ReadModels::new(client.get_connection_manager().await.expect("con"));
    // From here on this Redis refuses every write (no replica can acknowledge one), as a
    // read-only replica would: every search below must write nothing, temporary keys included.
    let mut admin = client.get_multiplexed_async_connection().await.expect("con");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("min-replicas-to-write")
        .arg(1)
        .query_async(&mut admin)
        .await
        .expect("writes refused from now on");

    let words = |p: &P| ordo_projections::search::weighted_terms(&p.name, p.brand, "");
    let queries = [
        ("", None, false, None, SearchSort::Relevance, 0),
        ("", None, true, None, SearchSort::PriceAsc, 40),
        ("", Some("kitchen"), true, Some((150, 400)), SearchSort::PriceDesc, 20),
        ("", None, false, Some((300, 450)), SearchSort::Relevance, 0),
        ("potter", None, false, None, SearchSort::PriceDesc, 0),
        ("pot", None, true, None, SearchSort::Relevance, 0),
        ("pot", Some("kitchen"), false, Some((100, 400)), SearchSort::PriceAsc, 0),
        ("pot", None, false, Some((150, 450)), SearchSort::Relevance, 2),
        ("blue pot", None, false, None, SearchSort::Relevance, 0),
        ("blue pot", None, true, None, SearchSort::PriceDesc, 0),
        ("blue", Some("table"), false, None, SearchSort::Relevance, 10),
        ("blue mug", None, false, None, SearchSort::PriceAsc, 0),
        ("red", None, false, Some((200, 300)), SearchSort::Relevance, 0),
        // 225 Kiln products: a single word with 200+ matches walks its own index.
        ("kiln", None, false, None, SearchSort::Relevance, 30),
        ("kiln", None, false, None, SearchSort::PriceDesc, 0),
        ("kiln", Some("table"), false, None, SearchSort::PriceAsc, 5),
        // 225 "table" products: price walks driven by the category's own price index.
        ("", Some("table"), false, None, SearchSort::PriceDesc, 3),
        ("", Some("table"), false, Some((100, 400)), SearchSort::PriceAsc, 0),
    ];
    for (text, category, in_stock, range, sort, offset) in queries {
        let q = SearchQuery {
            text: text.into(),
            category: category.map(str::to_owned),
            in_stock,
            min_price: range.map(|r| r.0),
            max_price: range.map(|r| r.1),
            sort,
            cursor: Some(offset.to_string()),
            limit: 15,
            ..SearchQuery::default()
        };
        let tokens = ordo_projections::search::tokens(text);
        let mut matches: Vec<(&P, f64)> = model
            .iter()
            .filter(|p| category.is_none_or(|c| p.category == c) && (!in_stock || p.stock > 0))
            .filter(|p| range.is_none_or(|(lo, hi)| p.price >= lo && p.price <= hi))
            .filter_map(|p| {
                let terms = words(p);
                let mut score = 0.0;
                for (i, t) in tokens.iter().enumerate() {
                    let last = i + 1 == tokens.len();
                    let hit: f64 = terms
                        .iter()
                        .filter(|(k, _)| if last { k.starts_with(t.as_str()) } else { *k == t })
                        .map(|(_, w)| *w)
                        .sum();
                    if hit == 0.0 {
                        return None;
                    }
                    score += hit;
                }
                Some((p, score))
            })
            .collect();
        match (sort, tokens.is_empty()) {
            (SearchSort::Relevance, false) => {
                matches.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.sku.cmp(&a.0.sku)))
            }
            (SearchSort::PriceDesc, _) => {
                matches.sort_by(|a, b| b.0.price.cmp(&a.0.price).then(b.0.sku.cmp(&a.0.sku)))
            }
            _ => matches.sort_by(|a, b| a.0.price.cmp(&b.0.price).then(a.0.sku.cmp(&b.0.sku))),
        }
        let want: Vec<&str> =
            matches.iter().skip(offset).take(15).map(|(p, _)| p.sku.as_str()).collect();
        let page = reads.search(&q).await.expect("search");
        let got: Vec<&str> = page.products.iter().map(|p| p.sku.as_str()).collect();
        assert_eq!(
            got, want,
            "query {text:?} {category:?} in_stock={in_stock} {range:?} {sort:?} from {offset}"
        );
        if page.total_is_exact {
            assert_eq!(page.total as usize, matches.len(), "exact total of {text:?}");
        } else {
            let shown = offset + page.products.len();
            assert!(
                page.total as usize >= shown && page.total as usize <= matches.len(),
                "lower bound {} of {}",
                page.total,
                matches.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_projection_follows_a_rebuild_to_the_new_version() {
    let shop = scripted_shop().await;
    let head = shop.store.last_position().await.expect("head").expect("events");
    let (applied_tx, mut applied) = tokio::sync::watch::channel(0);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let served = tokio::spawn(ordo_projections::supervisor::supervise::<ProductView, _>(
        shop.store.clone(),
        shop.client.clone(),
        RunnerConfig::default(),
        applied_tx,
        stopped,
    ));
    tokio::time::timeout(Duration::from_secs(10), applied.wait_for(|p| *p > head.0))
        .await
        .expect("caught up")
        .expect("open");

    let report = shop.rebuild::<ProductView>().await;
    assert_eq!(report.version, 2);
    // Written after the rebuild finished: only the served runner can carry it into v2.
    let products = Repository::<Product, _>::new(shop.store.clone(), 10);
    let list = list("NEW-1", "Brand new", "", "kitchen", "Potter", 500);
    let receipt = products.execute("NEW-1", &list, &ctx()).await.expect("listed");
    let reads = ReadModels::new(shop.connection().await);
    let position = receipt.position.expect("appended").0;
    reads
        .wait_for("catalogue", position, Duration::from_secs(10))
        .await
        .expect("v2 reached the new event");
    assert_eq!(
        reads.product("NEW-1").await.expect("query").map(|p| p.name),
        Some("Brand new".to_owned())
    );

    stop.send(true).expect("signal");
    tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("stops")
        .expect("task")
        .expect("clean");
}

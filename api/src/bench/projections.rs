//! `ordo bench projections`: generate a realistic shop history, rebuild every projection into a
//! private Redis, and time the two queries that matter most (order history, product search),
//! one client, as the API reads them (the documents it sends: `order_history_p99_ms`,
//! `search_p99_ms`) and as the library's typed queries do (`typed_*`).

use super::percentile_ms;
use anyhow::Context;
use ordo_domain::cart::{self, CartEvent};
use ordo_domain::order::{self, Address, OrderEvent, OrderLine};
use ordo_domain::product::{self, ProductEvent};
use ordo_domain::{CartId, Currency, CustomerId, Money, OrderId, ReservationId, Sku, Timestamp};
use ordo_eventstore::codec::DomainEvent;
use ordo_eventstore::*;
use ordo_projections::query::{HistoryQuery, ReadModels, SearchQuery, SearchSort};
use ordo_projections::rebuild::rebuild;
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::RunnerConfig;
use ordo_projections::views::{CartView, OrderView, ProductView, View};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `ordo bench projections`.
#[derive(clap::Args, Debug)]
pub struct ProjectionsBenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Events to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Queries of each kind to time.
    #[arg(long, default_value_t = 2_000)]
    pub queries: usize,
    /// Directory for the temporary store and Redis (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Keep the generated event store as `DIR/events.redb`, a data directory to try
    /// `ordo rebuild --data-dir DIR` on.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
}

const ADJECTIVES: [&str; 10] = [
    "Stoneware",
    "Enamel",
    "Copper",
    "Bamboo",
    "Linen",
    "Cast-iron",
    "Ceramic",
    "Glass",
    "Oak",
    "Steel",
];
const NOUNS: [&str; 12] = [
    "Mug", "Teapot", "Kettle", "Lamp", "Tent", "Pan", "Bowl", "Knife", "Blanket", "Chair",
    "Bottle", "Jar",
];
const CATEGORIES: [&str; 5] = ["kitchen", "outdoor", "home", "garden", "bath"];
const BRANDS: [&str; 8] =
    ["Potter", "Trailhead", "Steelworks", "Brightly", "Northwood", "Hearth", "Kiln", "Tidewater"];

/// A small deterministic generator: the same run generates the same shop.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

/// Appends domain events to the stream of aggregate `id`.
async fn append<E: DomainEvent>(
    store: &EmbeddedStore,
    id: &str,
    expected: ExpectedVersion,
    events: &[E],
) -> anyhow::Result<()> {
    store
        .append(&StreamName::for_aggregate(E::CATEGORY, id)?, expected, new_events(events)?)
        .await?;
    Ok(())
}

fn new_events<E: DomainEvent>(events: &[E]) -> anyhow::Result<Vec<NewEvent>> {
    events
        .iter()
        .map(|e| Ok(e.encode()?.into_new_event(uuid::Uuid::now_v7(), EventMetadata::default())))
        .collect()
}

struct Catalogue {
    skus: Vec<Sku>,
    prices: Vec<i64>,
    names: Vec<String>,
}

async fn list_catalogue(
    store: &EmbeddedStore,
    products: usize,
    rng: &mut Lcg,
) -> anyhow::Result<(Catalogue, u64)> {
    let mut catalogue = Catalogue { skus: Vec::new(), prices: Vec::new(), names: Vec::new() };
    for i in 0..products {
        let name = format!("{} {} {}", ADJECTIVES[i % 10], NOUNS[(i / 10) % 12], 100 + i);
        let brand = BRANDS[rng.below(8) as usize];
        let price = 500 + rng.below(20_000) as i64;
        let sku = Sku::parse(format!("SKU-{i:06}"))?;
        let events = [
            ProductEvent::Listed(product::ProductListed {
                sku: sku.clone(),
                name: name.clone(),
                description: format!(
                    "{name} by {brand}: made to last, easy to clean, a favourite gift."
                ),
                category: CATEGORIES[rng.below(5) as usize].into(),
                brand: brand.into(),
                price: eur(price),
                image_urls: vec![format!("https://img.example/{sku}.jpg")],
                at: Timestamp(0),
            }),
            ProductEvent::StockReceived(product::StockReceived {
                quantity: 100_000,
                at: Timestamp(0),
            }),
        ];
        append(store, sku.as_str(), ExpectedVersion::NoStream, &events).await?;
        catalogue.skus.push(sku);
        catalogue.prices.push(price);
        catalogue.names.push(name);
    }
    Ok((catalogue, products as u64 * 2))
}

/// One shopper's visit: a cart, reservations, an order through confirmation (and sometimes
/// shipment, delivery or cancellation), stock committed. Returns events written.
async fn session(
    store: &EmbeddedStore,
    catalogue: &Catalogue,
    customers: u64,
    n: u64,
    rng: &mut Lcg,
) -> anyhow::Result<u64> {
    let at = Timestamp(1_767_225_600_000 + n as i64 * 1_000);
    let customer = CustomerId::parse(format!("cus-{}", rng.below(customers)))?;
    let cart_id = CartId::parse(format!("cart-{n}"))?;
    let order_id = OrderId::parse(format!("ord-{n}"))?;
    let reservation = ReservationId::from(&cart_id);
    let picks: Vec<usize> = {
        let mut p: Vec<usize> = (0..1 + rng.below(3))
            .map(|_| rng.below(catalogue.skus.len() as u64) as usize)
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    };
    let mut cart_events = vec![CartEvent::Opened(cart::CartOpened {
        cart_id: cart_id.clone(),
        customer_id: customer.clone(),
        ttl_ms: 900_000,
        expires_at: at.plus_millis(900_000),
        at,
    })];
    let mut lines = Vec::new();
    for &i in &picks {
        let quantity = 1 + rng.below(3) as u32;
        cart_events.push(CartEvent::ItemQuantitySet(cart::ItemQuantitySet {
            sku: catalogue.skus[i].clone(),
            quantity,
            unit_price: eur(catalogue.prices[i]),
            expires_at: at.plus_millis(900_000),
            at,
        }));
        lines.push(OrderLine {
            sku: catalogue.skus[i].clone(),
            name: catalogue.names[i].clone(),
            quantity,
            unit_price: eur(catalogue.prices[i]),
            line_total: eur(catalogue.prices[i] * i64::from(quantity)),
        });
    }
    cart_events
        .push(CartEvent::CheckedOut(cart::CartCheckedOut { order_id: order_id.clone(), at }));
    let mut written = cart_events.len() as u64;
    append(store, cart_id.as_str(), ExpectedVersion::NoStream, &cart_events).await?;
    for line in &lines {
        let reserve = [ProductEvent::StockReserved(product::StockReserved {
            reservation_id: reservation.clone(),
            quantity: line.quantity,
            expires_at: at.plus_millis(900_000),
            at,
        })];
        append(store, line.sku.as_str(), ExpectedVersion::Any, &reserve).await?;
        written += 1;
    }
    let total = eur(lines.iter().map(|l| l.line_total.minor).sum());
    let mut order_events = vec![
        OrderEvent::Placed(order::OrderPlaced {
            order_id: order_id.clone(),
            customer_id: customer,
            reservation_id: reservation.clone(),
            lines: lines.clone(),
            total,
            shipping_address: Address {
                name: "Customer".into(),
                line1: format!("{} Market St", n % 500),
                line2: String::new(),
                city: "Lyon".into(),
                postal_code: "69001".into(),
                country: "FR".into(),
            },
            payment_token: "tok_approve".into(),
            placed_at: at,
        }),
        OrderEvent::PaymentAuthorized(order::OrderPaymentAuthorized { amount: total, at }),
        OrderEvent::Confirmed(order::OrderConfirmed { at }),
    ];
    match rng.below(10) {
        0..=3 => order_events.push(OrderEvent::Shipped(order::OrderShipped {
            carrier: "DHL".into(),
            tracking: format!("JD{n}"),
            at,
        })),
        4..=5 => {
            order_events.push(OrderEvent::Shipped(order::OrderShipped {
                carrier: "UPS".into(),
                tracking: format!("1Z{n}"),
                at,
            }));
            order_events.push(OrderEvent::Delivered(order::OrderDelivered { at }));
        }
        6 => order_events.push(OrderEvent::Cancelled(order::OrderCancelled {
            reason: "changed mind".into(),
            by: order::Actor::System,
            at,
        })),
        _ => {}
    }
    written += order_events.len() as u64;
    append(store, order_id.as_str(), ExpectedVersion::NoStream, &order_events).await?;
    for line in &lines {
        let commit = [ProductEvent::ReservationCommitted(product::ReservationCommitted {
            reservation_id: reservation.clone(),
            quantity: line.quantity,
            at,
        })];
        append(store, line.sku.as_str(), ExpectedVersion::Any, &commit).await?;
        written += 1;
    }
    Ok(written)
}

/// Runs the benchmark and prints the figures.
pub fn run(args: &ProjectionsBenchArgs) -> anyhow::Result<()> {
    let dir = super::temp_dir(args.dir.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let figures = runtime.block_on(measure(dir.path(), args))?;
    if let Some(keep) = &args.keep {
        std::fs::create_dir_all(keep)?;
        let target = keep.join("events.redb");
        if target.exists() {
            anyhow::bail!("{} exists; not overwriting it", target.display());
        }
        std::fs::copy(dir.path().join("events.redb"), &target)
            .with_context(|| format!("keeping the generated store as {}", target.display()))?;
    }
    super::print(&figures, args.json)?;
    Ok(())
}

async fn measure(
    dir: &std::path::Path,
    args: &ProjectionsBenchArgs,
) -> anyhow::Result<serde_json::Value> {
    // Generation is not what is measured: relaxed durability keeps it quick.
    let mut config = EmbeddedConfig::new(dir.join("events.redb"));
    config.durability = Durability::Relaxed;
    let store = Arc::new(EmbeddedStore::open(config)?);
    let products = (args.events / 100).clamp(100, 20_000) as usize;
    let customers = (args.events / 40).max(10);
    let started = Instant::now();
    let (catalogue, listed) = list_catalogue(&store, products, &mut Lcg(42)).await?;
    let catalogue = Arc::new(catalogue);
    let sessions_needed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let written = Arc::new(std::sync::atomic::AtomicU64::new(listed));
    let mut tasks = Vec::new();
    for worker in 0..32u64 {
        let (store, catalogue, next, written) =
            (store.clone(), catalogue.clone(), sessions_needed.clone(), written.clone());
        let target = args.events;
        tasks.push(tokio::spawn(async move {
            use std::sync::atomic::Ordering::Relaxed;
            let mut rng = Lcg(1_000 + worker);
            while written.load(Relaxed) < target {
                let n = next.fetch_add(1, Relaxed);
                let w = session(&store, &catalogue, customers, n, &mut rng).await?;
                written.fetch_add(w, Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let generated = store.len();
    let generate_seconds = started.elapsed().as_secs_f64();

    let mut redis_server = PrivateRedis::start(&dir.join("redis"), false)?;
    let client = redis::Client::open(redis_server.url())?;
    let started = Instant::now();
    let (orders, catalogue_secs, carts) = tokio::try_join!(
        timed_rebuild::<OrderView>(&store, &client),
        timed_rebuild::<ProductView>(&store, &client),
        timed_rebuild::<CartView>(&store, &client),
    )?;
    let rebuild_seconds = started.elapsed().as_secs_f64();
    let rebuild_eps = (generated as f64 / rebuild_seconds).round();

    let reads = ReadModels::new(client.get_connection_manager().await?);
    let mut rng = Lcg(7);
    // What the API serves (documents), and the typed queries the library also offers.
    let mut history = Vec::with_capacity(args.queries);
    let mut typed_history = Vec::with_capacity(args.queries);
    let mut history_rows = 0;
    for i in 0..args.queries {
        let query = HistoryQuery {
            status: (i % 4 == 0)
                .then(|| ["confirmed", "shipped", "delivered", "cancelled"][i / 4 % 4].to_owned()),
            limit: 20,
            ..HistoryQuery::default()
        };
        let customer = format!("cus-{}", rng.below(customers));
        let t = Instant::now();
        history_rows += reads.order_history_documents(&customer, &query).await?.orders.len();
        history.push(t.elapsed());
        let t = Instant::now();
        reads.order_history(&customer, &query).await?;
        typed_history.push(t.elapsed());
    }
    let mut searches = Vec::with_capacity(args.queries);
    let mut typed_searches = Vec::with_capacity(args.queries);
    let mut by_kind: [Vec<Duration>; 3] = Default::default();
    let mut search_hits = 0;
    for i in 0..args.queries {
        let noun = NOUNS[rng.below(12) as usize].to_lowercase();
        let text = match i % 3 {
            0 => noun[..3].to_owned(),
            1 => format!("{} {noun}", ADJECTIVES[rng.below(10) as usize].to_lowercase()),
            _ => BRANDS[rng.below(8) as usize].to_lowercase(),
        };
        let query = SearchQuery {
            text,
            category: (i % 5 == 0).then(|| CATEGORIES[rng.below(5) as usize].to_owned()),
            in_stock: i % 2 == 0,
            max_price: (i % 7 == 0).then_some(5_000),
            sort: [SearchSort::Relevance, SearchSort::PriceAsc, SearchSort::PriceDesc][i % 3],
            limit: 20,
            ..SearchQuery::default()
        };
        let t = Instant::now();
        let page = reads.search_documents(&query).await?;
        searches.push(t.elapsed());
        by_kind[i % 3].push(t.elapsed());
        // Compact JSON documents, each opening with its SKU (a quote inside a string is escaped).
        search_hits += page.products.joined.matches("{\"sku\":").count();
        let t = Instant::now();
        reads.search(&query).await?;
        typed_searches.push(t.elapsed());
    }
    redis_server.stop();
    store.close();

    Ok(serde_json::json!({
        "events": generated,
        "products": products,
        "customers": customers,
        "generate_seconds": (generate_seconds * 100.0).round() / 100.0,
        "rebuild_seconds": (rebuild_seconds * 100.0).round() / 100.0,
        "rebuild_eps": rebuild_eps,
        "rebuild_seconds_by_projection": { "orders": orders, "catalogue": catalogue_secs, "carts": carts },
        "queries_per_kind": args.queries,
        "order_history_p50_ms": percentile_ms(&mut history, 50.0),
        "order_history_p99_ms": percentile_ms(&mut history, 99.0),
        "order_history_avg_rows": history_rows as f64 / args.queries as f64,
        "typed_order_history_p99_ms": percentile_ms(&mut typed_history, 99.0),
        "search_p50_ms": percentile_ms(&mut searches, 50.0),
        "search_p99_ms": percentile_ms(&mut searches, 99.0),
        "search_avg_hits": search_hits as f64 / args.queries as f64,
        "typed_search_p99_ms": percentile_ms(&mut typed_searches, 99.0),
        "search_p99_ms_by_kind": {
            "prefix_relevance": percentile_ms(&mut by_kind[0], 99.0),
            "two_words_price_asc": percentile_ms(&mut by_kind[1], 99.0),
            "brand_price_desc": percentile_ms(&mut by_kind[2], 99.0),
        },
    }))
}

/// Rebuilds one projection (all three run concurrently, as `ordo serve` runs them); seconds.
async fn timed_rebuild<V: View>(
    store: &Arc<EmbeddedStore>,
    client: &redis::Client,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let connection = client.get_connection_manager().await?;
    rebuild::<V, _>(store.clone(), connection, RunnerConfig::default(), Duration::ZERO, |_, _| {})
        .await?;
    Ok((started.elapsed().as_secs_f64() * 100.0).round() / 100.0)
}

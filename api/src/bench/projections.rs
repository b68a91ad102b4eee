//! `ordo bench projections`: generate a realistic shop history, rebuild every projection into a
//! private Redis, and time the two queries that matter most (order history, product search),
//! one client, as the API reads them (the documents it sends: `order_history_p99_ms`,
//! `search_p99_ms`) and as the library's typed queries do (`typed_*`). The history itself is
//! `shop_history`'s.

use super::percentile_ms;
use super::shop_history::{list_catalogue, session, Lcg, ADJECTIVES, BRANDS, CATEGORIES, NOUNS};
use anyhow::Context;
use ordo_eventstore::*;
use ordo_projections::query::{HistoryQuery, ReadModels, SearchQuery, SearchSort};
use ordo_projections::rebuild::rebuild;
use ordo_projections::redis_server::PrivateRedis;
use ordo_projections::runner::{fenced_connection, RunnerConfig};
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
    // The runners' own kind of connection, as `ordo rebuild` and `ordo serve` give them.
    let connection = fenced_connection(client).await?;
    rebuild::<V, _>(store.clone(), connection, RunnerConfig::default(), Duration::ZERO, |_, _| {})
        .await?;
    Ok((started.elapsed().as_secs_f64() * 100.0).round() / 100.0)
}

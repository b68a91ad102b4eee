//! `ordo bench hot-sku`: a flash sale on one product, over real HTTP.
//!
//! Without `--url` it starts `ordo serve` (this binary) on a temporary data directory with its
//! private Redis; with `--url` and an admin `--token` it drives an existing server. Two cases:
//!
//! 1. **Shoppers on one product**: `--shoppers` (64) shoppers, each with a cart, set their line
//!    of one product again and again (quantity 1, then 2, ...) for `--duration`: commands per
//!    second and their latency.
//! 2. **A crowd for the last units**: `--crowd` (1,000) shoppers, one connection each, look at
//!    the product (which opens their connections), then add it with `--units` (100) in stock at
//!    the same moment: exactly that many must succeed, the rest must be refused fast, and
//!    availability must end at zero. It starts once the server's log followers have worked off
//!    the first case's events (`settle_ms`). Latencies count from the moment of adding.
//!
//! Conflict retries per command (lost version races before a command committed) come from the
//! server's `ordo_command_conflicts` histogram, read before and after each case.

use super::target::{start_server_on, wait_until_ready, Target};
use super::{percentile_ms, print};
use anyhow::Context;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `ordo bench hot-sku`.
#[derive(clap::Args, Debug)]
pub struct HotSkuBenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Drive this server instead of starting one, e.g. `http://127.0.0.1:8080`.
    #[arg(long, requires = "token")]
    pub url: Option<String>,
    /// Admin token for `--url` (from `ordo token`), to list the products.
    #[arg(long)]
    pub token: Option<String>,
    /// Shoppers changing their line of one product in the first case.
    #[arg(long, default_value_t = 64)]
    pub shoppers: usize,
    /// How long the first case runs, e.g. `8s`.
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Shoppers (and connections) racing for the last units in the second case.
    #[arg(long, default_value_t = 1_000)]
    pub crowd: usize,
    /// Units in stock for the crowd.
    #[arg(long, default_value_t = 100)]
    pub units: u32,
    /// Directory for the started server's data (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// The started server's event store (`--store` of `ordo serve`; default: its own file).
    /// `postgres` starts a private PostgreSQL cluster for the run (`initdb`, `pg_ctl`).
    #[arg(long)]
    pub store: Option<String>,
}

/// Runs `ordo bench hot-sku`.
pub fn run(args: &HotSkuBenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: &HotSkuBenchArgs) -> anyhow::Result<()> {
    let target = match (&args.url, &args.token) {
        (Some(url), Some(token)) => Target::existing(url, token),
        _ => start_server_on(args.dir.as_deref(), args.store.as_deref())?,
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.crowd.max(64)).build()?;
    wait_until_ready(&http, &target.base).await?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let run = run[run.len() - 8..].to_uppercase();

    let hot = format!("HOT{run}-A");
    list(&http, &target, &hot, 1_000_000).await?;
    let shoppers = sessions(&http, &target.base, args.shoppers).await?;
    let before = conflicts(&http, &target.base).await;
    let (mut latencies, errors, elapsed) =
        shoppers_on_one_product(&http, &target.base, &shoppers, &hot, args.duration).await;
    let retries = conflicts(&http, &target.base).await.zip(before).map(|(a, b)| a.minus(&b));
    let commands = latencies.len();

    let last = format!("HOT{run}-B");
    list(&http, &target, &last, args.units).await?;
    let crowd = sessions(&http, &target.base, args.crowd).await?;
    // The first case leaves the read side and the processes a backlog of events; the crowd
    // should race the server, not that backlog.
    let settled = settle(&http, &target.base).await;
    let before = conflicts(&http, &target.base).await;
    let race = crowd_for_the_last_units(&http, &target.base, &crowd, &last).await;
    let crowd_retries = conflicts(&http, &target.base).await.zip(before).map(|(a, b)| a.minus(&b));
    let available = available(&http, &target.base, &last, race.last_position).await?;
    let (mut refused, mut all) = (race.refused_latency, race.all_latency);

    let figures = json!({
        "shoppers": args.shoppers,
        "shopper_commands": commands,
        "shopper_commands_per_sec": (commands as f64 / elapsed.as_secs_f64()).round(),
        "shopper_p50_ms": percentile_ms(&mut latencies, 50.0),
        "shopper_p99_ms": percentile_ms(&mut latencies, 99.0),
        "shopper_errors": errors,
        "shopper_conflict_retries_p99": retries.as_ref().map(|h| h.percentile(0.99)),
        "shopper_conflict_retries_max": retries.as_ref().map(Histogram::max),
        "settle_ms": settled.map(|d| d.as_millis()),
        "crowd": args.crowd,
        "crowd_units": args.units,
        "crowd_succeeded": race.succeeded,
        "crowd_refused": race.refused,
        "crowd_errors": race.errors,
        "crowd_p50_ms": percentile_ms(&mut all, 50.0),
        "crowd_p99_ms": percentile_ms(&mut all, 99.0),
        "crowd_refused_p99_ms": percentile_ms(&mut refused, 99.0),
        "crowd_conflict_retries_p99": crowd_retries.as_ref().map(|h| h.percentile(0.99)),
        "crowd_available_after": available,
        "crowd_exact": race.succeeded == args.units as usize && available == 0,
    });
    print(&figures, args.json)
}

async fn list(
    http: &reqwest::Client,
    target: &Target,
    sku: &str,
    units: u32,
) -> anyhow::Result<()> {
    let product = json!({
        "sku": sku, "name": "Flash sale", "category": "sale", "brand": "Bench",
        "description": "One product, everyone at once.", "price_minor": 999,
    });
    for (path, body) in [
        ("/v1/products".to_owned(), product),
        (format!("/v1/products/{sku}/stock"), json!({ "quantity": units })),
    ] {
        let response = http
            .post(format!("{}{path}", target.base))
            .bearer_auth(&target.admin)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(response.status().is_success(), "{path}: {}", response.status());
    }
    Ok(())
}

/// `count` shoppers: a guest token and a cart each, made 64 at a time.
async fn sessions(
    http: &reqwest::Client,
    base: &str,
    count: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut made = Vec::with_capacity(count);
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..count {
        if pending.len() >= 64 {
            made.push(pending.join_next().await.context("a session task")???);
        }
        let (http, base) = (http.clone(), base.to_owned());
        pending.spawn(async move {
            let session: Value =
                http.post(format!("{base}/v1/sessions")).send().await?.json().await?;
            let token = session["token"].as_str().context("token")?.to_owned();
            let cart: Value = http
                .post(format!("{base}/v1/carts"))
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            let cart = cart["id"].as_str().context("cart id")?.to_owned();
            anyhow::Ok((token, cart))
        });
    }
    while let Some(done) = pending.join_next().await {
        made.push(done??);
    }
    Ok(made)
}

async fn shoppers_on_one_product(
    http: &reqwest::Client,
    base: &str,
    shoppers: &[(String, String)],
    sku: &str,
    duration: Duration,
) -> (Vec<Duration>, u64, Duration) {
    let started = Instant::now();
    let until = started + duration;
    let mut running = tokio::task::JoinSet::new();
    for (token, cart) in shoppers {
        let (http, token) = (http.clone(), token.clone());
        let path = format!("{base}/v1/carts/{cart}/items/{sku}");
        running.spawn(async move {
            let (mut latencies, mut errors, mut quantity) = (Vec::new(), 0u64, 1);
            while Instant::now() < until {
                let sent = Instant::now();
                let body = json!({ "quantity": quantity });
                let ok = http.put(&path).bearer_auth(&token).json(&body).send().await;
                match ok {
                    Ok(r) if r.status().is_success() => latencies.push(sent.elapsed()),
                    _ => errors += 1,
                }
                quantity = 3 - quantity;
            }
            (latencies, errors)
        });
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(Ok((latencies, failed))) = running.join_next().await {
        all.extend(latencies);
        errors += failed;
    }
    (all, errors, started.elapsed())
}

/// What the crowd got.
struct Race {
    succeeded: usize,
    refused: usize,
    errors: usize,
    all_latency: Vec<Duration>,
    refused_latency: Vec<Duration>,
    last_position: u64,
}

async fn crowd_for_the_last_units(
    http: &reqwest::Client,
    base: &str,
    crowd: &[(String, String)],
    sku: &str,
) -> Race {
    // Everyone connected and waiting at the start line, then all at once. Each shopper first
    // looks at the product, as shoppers waiting for a sale do, which opens their connection:
    // the race measures the server deciding, not the kernel accepting 1,000 connections.
    let looked = Arc::new(tokio::sync::Barrier::new(crowd.len()));
    let start = Arc::new(tokio::sync::Barrier::new(crowd.len()));
    let mut running = tokio::task::JoinSet::new();
    for (token, cart) in crowd {
        let (http, token) = (http.clone(), token.clone());
        let (looked, start) = (looked.clone(), start.clone());
        let product = format!("{base}/v1/products/{sku}");
        let path = format!("{base}/v1/carts/{cart}/items/{sku}");
        running.spawn(async move {
            // Holding the response until everyone has one keeps each connection its own.
            let page = http.get(&product).send().await.map(|r| r.bytes());
            looked.wait().await;
            if let Ok(body) = page {
                let _ = body.await;
            }
            start.wait().await;
            let sent = Instant::now();
            let body = json!({ "quantity": 1 });
            let response = http.put(&path).bearer_auth(&token).json(&body).send().await;
            let status = response.as_ref().map_or(0, |r| r.status().as_u16());
            let receipt: Value = match response {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            (status, sent.elapsed(), receipt["position"].as_u64().unwrap_or(0))
        });
    }
    let mut race = Race {
        succeeded: 0,
        refused: 0,
        errors: 0,
        all_latency: Vec::new(),
        refused_latency: Vec::new(),
        last_position: 0,
    };
    while let Some(Ok((status, latency, position))) = running.join_next().await {
        race.all_latency.push(latency);
        match status {
            200 => {
                race.succeeded += 1;
                race.last_position = race.last_position.max(position);
            }
            409 => {
                race.refused += 1;
                race.refused_latency.push(latency);
            }
            _ => race.errors += 1,
        }
    }
    race
}

/// The product's availability once the read side has seen every hold.
async fn available(
    http: &reqwest::Client,
    base: &str,
    sku: &str,
    position: u64,
) -> anyhow::Result<i64> {
    let path = format!("{base}/v1/products/{sku}?min_position={position}");
    let product: Value = http.get(path).send().await?.json().await?;
    product["available"].as_i64().context("available")
}

/// Waits until every log follower (projections, processes, outbox) has stopped moving: the sum
/// of `ordo_follower_events_total` unchanged over 200 ms. How long that took (`None`: the
/// server does not report it, or it did not settle within 30 s).
async fn settle(http: &reqwest::Client, base: &str) -> Option<Duration> {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < Duration::from_secs(30) {
        let text = http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
        let handled: f64 = text
            .lines()
            .filter(|l| l.starts_with("ordo_follower_events_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if last == Some(handled) {
            return Some(started.elapsed());
        }
        last = Some(handled);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// A cumulative histogram from `/metrics`: upper bounds and counts.
struct Histogram(Vec<(f64, f64)>);

impl Histogram {
    fn minus(&self, before: &Histogram) -> Histogram {
        let counts = self
            .0
            .iter()
            .map(|(le, n)| {
                let old = before.0.iter().find(|(b, _)| b == le).map_or(0.0, |(_, c)| *c);
                (*le, n - old)
            })
            .collect();
        Histogram(counts)
    }

    /// The smallest bound holding at least `q` of the samples.
    fn percentile(&self, q: f64) -> f64 {
        let total = self.0.last().map_or(0.0, |(_, n)| *n);
        self.0.iter().find(|(_, n)| *n >= q * total).map_or(0.0, |(le, _)| *le)
    }

    /// The largest bound any sample needed.
    fn max(&self) -> f64 {
        let total = self.0.last().map_or(0.0, |(_, n)| *n);
        self.0.iter().find(|(_, n)| *n >= total).map_or(0.0, |(le, _)| *le)
    }
}

/// `ordo_command_conflicts` as the server reports it (`None`: it does not).
async fn conflicts(http: &reqwest::Client, base: &str) -> Option<Histogram> {
    let text = http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
    let mut buckets = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("ordo_command_conflicts_bucket")) {
        let le = line.split("le=\"").nth(1)?.split('"').next()?;
        let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
        let count: f64 = line.rsplit(' ').next()?.parse().ok()?;
        match buckets.iter_mut().find(|(b, _): &&mut (f64, f64)| *b == le) {
            Some((_, n)) => *n += count,
            None => buckets.push((le, count)),
        }
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    (!buckets.is_empty()).then_some(Histogram(buckets))
}

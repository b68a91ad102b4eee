//! `ordo bench http`: the whole service under a shop-like mix, over real HTTP.
//!
//! Without `--url` it starts `ordo serve` (this binary) on a temporary data directory with
//! its private Redis and seeds a catalogue; with `--url` and an admin `--token` it seeds a
//! catalogue of its own (SKUs prefixed with the run id) into an existing server.
//!
//! Each client is a shopper with a guest session and a cart. The mix, per request: 80%
//! queries (40% search, 20% product page, 20% the shopper's order history) and 20% commands
//! (15% set a cart line, 5% check out and open a new cart). One in ten cart changes is
//! followed by a read of the cart at the receipt's `min_position`: that read's latency is the
//! read-side lag sample (an upper bound: it includes a query's round trip). Last, the same
//! clients hammer `/health/live` for a few seconds: the server's ceiling on this machine with
//! this client, measured in the same run. One in four checkouts is followed until the order
//! shows `confirmed` (payment authorized by the simulator, stock committed): the
//! checkout-to-confirmed latency. `--rate N` replaces the closed loop with an open one: queries
//! at a fixed offered load (`open_loop.rs`). With a server of its own, the figures include the
//! CPU each request of the mix (closed or open loop) cost the server, its Redis and the bench,
//! and what the hypervisor took from the machine meanwhile (`cpu.rs`): the figures that say
//! whether a change or the machine's hour moved the others.

use super::connection::Connection;
use super::target::{start_server, wait_until_ready, Target};
use super::{percentile_ms, print};
use anyhow::Context;
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of `ordo bench http`.
#[derive(clap::Args, Debug)]
pub struct HttpBenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Drive this server instead of starting one, e.g. `http://127.0.0.1:8080`.
    #[arg(long, requires = "token")]
    pub url: Option<String>,
    /// Admin token for `--url` (from `ordo token`), to seed the catalogue.
    #[arg(long)]
    pub token: Option<String>,
    /// Concurrent clients (shoppers).
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// How long the mixed workload runs, e.g. `10s`.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long the `/health/live` ceiling runs.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub ceiling_duration: Duration,
    /// Products seeded.
    #[arg(long, default_value_t = 500)]
    pub products: usize,
    /// Directory for the started server's data (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Instead of the closed-loop mix: offer this many queries per second on a fixed
    /// schedule for `--duration` (open loop) and report p50/p99/p999 per kind.
    #[arg(long)]
    pub rate: Option<u32>,
}

const WORDS: [&str; 12] = [
    "mug", "tea", "linen", "oak", "steel", "wool", "cotton", "glass", "clay", "brass", "cedar",
    "slate",
];
const KINDS: [&str; 6] = ["cup", "bowl", "lamp", "towel", "board", "vase"];

/// Latency samples of one client.
#[derive(Default)]
struct Samples {
    query: Vec<Duration>,
    command: Vec<Duration>,
    lag: Vec<Duration>,
    confirm: Vec<Duration>,
    errors: u64,
}

struct Client {
    connection: Connection,
    /// The guest session's token (the open loop sends it with its own client).
    token: String,
    cart: String,
    items: u32,
    seed: u64,
}

impl Client {
    fn next(&mut self, n: u64) -> u64 {
        // xorshift: cheap, deterministic per client.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        self.seed % n
    }

    /// Sends a request and checks that it succeeded. The body is not parsed: a search page is
    /// several kilobytes of JSON, and parsing every answer made this client spend more CPU per
    /// request than some of the server's queries, on the cores the server is measured on.
    /// [`Client::send_json`] parses the answers the client reads something from.
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Bytes> {
        let body = body.map(|b| serde_json::to_vec(&b)).transpose()?;
        let (status, bytes) = self.connection.send(method, path, body).await?;
        anyhow::ensure!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        Ok(bytes)
    }

    /// [`Client::send`], and the answer parsed.
    async fn send_json(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let bytes = self.send(method, path, body).await?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn open_cart(&mut self) -> anyhow::Result<()> {
        let receipt = self.send_json(Method::POST, "/v1/carts", None).await?;
        self.cart = receipt["id"].as_str().context("cart id")?.to_owned();
        self.items = 0;
        Ok(())
    }

    /// One request of the mix.
    /// Places `orders` orders of one unit each, so the shopper's history has something in it.
    async fn place_orders(&mut self, skus: &[String], orders: usize) -> anyhow::Result<()> {
        for _ in 0..orders {
            let sku = &skus[self.next(skus.len() as u64) as usize];
            let path = format!("/v1/carts/{}/items/{sku}", self.cart);
            self.send(Method::PUT, &path, Some(json!({ "quantity": 1 }))).await?;
            let path = format!("/v1/carts/{}/checkout", self.cart);
            self.send(Method::POST, &path, Some(checkout_body())).await?;
            self.open_cart().await?;
        }
        Ok(())
    }

    async fn step(&mut self, skus: &[String], samples: &mut Samples) -> anyhow::Result<()> {
        let roll = self.next(100);
        let started = Instant::now();
        if roll < 80 {
            let path = match roll {
                0..40 => {
                    let word = WORDS[self.next(WORDS.len() as u64) as usize];
                    format!("/v1/products?q={word}&limit=20")
                }
                40..60 => format!("/v1/products/{}", skus[self.next(skus.len() as u64) as usize]),
                _ => "/v1/me/orders?limit=20".to_owned(),
            };
            self.send(Method::GET, &path, None).await?;
            samples.query.push(started.elapsed());
            return Ok(());
        }
        if roll < 95 || self.items == 0 {
            let sku = &skus[self.next(skus.len() as u64) as usize];
            let quantity = 1 + self.next(3);
            let path = format!("/v1/carts/{}/items/{sku}", self.cart);
            let receipt =
                self.send_json(Method::PUT, &path, Some(json!({ "quantity": quantity }))).await?;
            samples.command.push(started.elapsed());
            self.items += 1;
            if self.next(10) == 0 {
                let acknowledged = Instant::now();
                let position = receipt["position"].as_u64().unwrap_or(0);
                let path = format!("/v1/carts/{}?min_position={position}", self.cart);
                self.send(Method::GET, &path, None).await?;
                samples.lag.push(acknowledged.elapsed());
            }
            return Ok(());
        }
        let path = format!("/v1/carts/{}/checkout", self.cart);
        let placed = self.send_json(Method::POST, &path, Some(checkout_body())).await?;
        samples.command.push(started.elapsed());
        if self.next(4) == 0 {
            // Checkout to confirmed: payment authorized, stock committed, as the shopper sees it.
            let order = placed["id"].as_str().unwrap_or_default().to_owned();
            let deadline = started + Duration::from_secs(10);
            while Instant::now() < deadline {
                let view = self.send_json(Method::GET, &format!("/v1/orders/{order}"), None).await;
                if view.is_ok_and(|v| v["status"] == "confirmed") {
                    samples.confirm.push(started.elapsed());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let started = Instant::now();
        self.open_cart().await?;
        samples.command.push(started.elapsed());
        Ok(())
    }
}

/// A checkout with an approving test card.
fn checkout_body() -> Value {
    json!({
        "shipping_address": { "name": "Bench", "line1": "1 Load St", "city": "Berlin",
                              "postal_code": "10115", "country": "DE" },
        "payment_token": "tok_visa",
    })
}

async fn seed(
    http: &reqwest::Client,
    target: &Target,
    count: usize,
) -> anyhow::Result<(Vec<String>, u64)> {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let run = run[run.len() - 8..].to_uppercase();
    let mut skus = Vec::with_capacity(count);
    let mut last = 0;
    for i in 0..count {
        let sku = format!("B{run}-{i}");
        let name = format!("{} {} {i}", WORDS[i % WORDS.len()], KINDS[i % KINDS.len()]);
        let product = json!({
            "sku": sku, "name": name, "category": KINDS[i % KINDS.len()], "brand": "Bench",
            "description": format!("A {} made for load tests.", WORDS[(i / 3) % WORDS.len()]),
            "price_minor": 500 + (i as i64 * 37) % 20_000,
        });
        for (path, body) in [
            ("/v1/products".to_owned(), product),
            (format!("/v1/products/{sku}/stock"), json!({ "quantity": 1_000_000 })),
        ] {
            let response = http
                .post(format!("{}{path}", target.base))
                .bearer_auth(&target.admin)
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            if !status.is_success() {
                anyhow::bail!("seeding {path}: {status} {}", response.text().await?);
            }
            let receipt: Value = response.json().await?;
            last = receipt["position"].as_u64().unwrap_or(last);
        }
        skus.push(sku);
    }
    Ok((skus, last))
}

/// Runs `ordo bench http`.
pub fn run(args: &HttpBenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: &HttpBenchArgs) -> anyhow::Result<()> {
    let target = match (&args.url, &args.token) {
        (Some(url), Some(token)) => Target::existing(url, token),
        _ => start_server(args.dir.as_deref())?,
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(args.clients).build()?;
    wait_until_ready(&http, &target.base).await?;
    let (skus, seeded) = seed(&http, &target, args.products).await?;
    // Wait until the catalogue is searchable before measuring.
    let probe = format!("{}/v1/products/{}?min_position={seeded}", target.base, skus[0]);
    for _ in 0..100 {
        if http.get(&probe).send().await?.status().is_success() {
            break;
        }
    }
    let skus = Arc::new(skus);

    let mut clients = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let session: Value =
            http.post(format!("{}/v1/sessions", target.base)).send().await?.json().await?;
        let token = session["token"].as_str().context("session token")?;
        let mut client = Client {
            connection: Connection::new(&target.base, token)?,
            token: token.to_owned(),
            cart: String::new(),
            items: 0,
            seed: 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
        };
        client.open_cart().await?;
        clients.push(client);
    }

    if let Some(rate) = args.rate {
        // Histories with a few orders each, as a returning shopper's.
        for client in &mut clients {
            client.place_orders(&skus, 3).await?;
        }
        let load = super::open_loop::Load {
            base: target.base.clone(),
            skus: skus.clone(),
            words: &WORDS,
            tokens: clients.iter().map(|c| c.token.clone()).collect(),
        };
        let cpu = super::cpu::Processes::of(target.server_pid(), target.data_dir().as_deref());
        let cpu_before = cpu.sample();
        let mut figures = super::open_loop::run(load, rate, args.duration).await;
        let count = |key: &str| figures[key].as_u64().unwrap_or(0);
        let answered = count("requests").saturating_sub(count("errors"));
        let cpu_figures = cpu_before.per_request(&cpu.sample(), answered as usize);
        if let Value::Object(map) = &mut figures {
            map.extend(cpu_figures);
        }
        drop(target);
        return print(&figures, args.json);
    }

    let cpu = super::cpu::Processes::of(target.server_pid(), target.data_dir().as_deref());
    let cpu_before = cpu.sample();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut client in clients {
        let (stop, skus) = (stop.clone(), skus.clone());
        tasks.spawn(async move {
            let mut samples = Samples::default();
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = client.step(&skus, &mut samples).await {
                    samples.errors += 1;
                    if samples.errors <= 3 {
                        tracing::warn!(error = %e, "request failed");
                    }
                }
            }
            (client, samples)
        });
    }
    tokio::time::sleep(args.duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Samples::default();
    let mut clients = Vec::new();
    for (client, s) in tasks.join_all().await {
        all.query.extend(s.query);
        all.command.extend(s.command);
        all.lag.extend(s.lag);
        all.confirm.extend(s.confirm);
        all.errors += s.errors;
        clients.push(client);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let answered = all.query.len() + all.command.len() + all.lag.len();
    let cpu_per_request = cpu_before.per_request(&cpu.sample(), answered);

    // The ceiling: the same clients on the cheapest endpoint.
    let stop = Arc::new(AtomicBool::new(false));
    let ceiling_started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut client in clients {
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Ok((StatusCode::OK, _)) =
                    client.connection.send(Method::GET, "/health/live", None).await
                {
                    done += 1;
                }
            }
            done
        });
    }
    tokio::time::sleep(args.ceiling_duration).await;
    stop.store(true, Ordering::Relaxed);
    let live: u64 = tasks.join_all().await.into_iter().sum();
    let ceiling_rps = live as f64 / ceiling_started.elapsed().as_secs_f64();

    let (queries, commands) = (all.query.len(), all.command.len());
    let mut figures = json!({
        "clients": args.clients,
        "duration_s": (elapsed * 10.0).round() / 10.0,
        "total_rps": (answered as f64 / elapsed).round(),
        "query_rps": (queries as f64 / elapsed).round(),
        "command_rps": (commands as f64 / elapsed).round(),
        "query_p50_ms": round3(percentile_ms(&mut all.query, 50.0)),
        "query_p99_ms": round3(percentile_ms(&mut all.query, 99.0)),
        "command_p50_ms": round3(percentile_ms(&mut all.command, 50.0)),
        "command_p99_ms": round3(percentile_ms(&mut all.command, 99.0)),
        "lag_p50_ms": round3(percentile_ms(&mut all.lag, 50.0)),
        "lag_p99_ms": round3(percentile_ms(&mut all.lag, 99.0)),
        "lag_samples": all.lag.len(),
        "checkout_to_confirmed_p50_ms": round3(percentile_ms(&mut all.confirm, 50.0)),
        "checkout_to_confirmed_p99_ms": round3(percentile_ms(&mut all.confirm, 99.0)),
        "confirm_samples": all.confirm.len(),
        "errors": all.errors,
        "ceiling_rps": ceiling_rps.round(),
        "products": args.products,
    });
    if let Some(map) = figures.as_object_mut() {
        map.extend(cpu_per_request);
    }
    drop(target);
    print(&figures, args.json)
}

fn round3(ms: f64) -> f64 {
    (ms * 1_000.0).round() / 1_000.0
}

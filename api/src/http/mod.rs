//! `ordo serve` and `ordo openapi`: the HTTP server and its API document.
//!
//! Serving opens the embedded store in the data directory, uses Redis from `REDIS_URL` or a
//! private `redis-server` under the data directory, keeps every projection running on its
//! active version, and answers HTTP until SIGTERM or ctrl-c. Then in-flight requests finish,
//! projections stop after their current batch, the store flushes and the private Redis stops.

mod admin;
pub mod auth;
mod background;
mod body;
mod carts;
mod catalogue;
mod console;
mod coordination;
mod dto;
mod idempotency;
mod log;
mod middleware;
mod operations;
mod orders;
mod params;
mod problem;
mod rendered;
mod responses;
mod state;

use crate::cli::environment::{redis_for, DataDir, PrivateRedisUse, StoreArgs, SupervisedRedis};
use crate::http::auth::Keys;
use anyhow::Context;
use coordination::Coordination;
use idempotency::Idempotency;
use middleware::{problem_response, Api, Front, Routes};
use ordo_application::leases::{LeaseConfig, Roles};
use ordo_application::payments::Simulator;
use ordo_application::processes::{ProcessConfig, Processes};
use ordo_application::shop::{Shop, ShopConfig};
use ordo_domain::Currency;
use ordo_eventstore::Access;
use ordo_projections::query::{ReadModels, Replica};
use poem::listener::TcpListener;
use poem::{EndpointExt, IntoEndpoint, Route, Server};
use poem_openapi::OpenApiService;
use state::App;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use body::MAX_BODY_BYTES;
/// Redis connections queries spread over.
const READ_CONNECTIONS: usize = 4;
/// How long in-flight requests may take to finish on shutdown.
pub const DRAIN: Duration = Duration::from_secs(10);

/// Options of `ordo serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ORDO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Data directory.
    #[command(flatten)]
    pub data: DataDir,
    /// The event store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Redis for the read models (default: a private server under the data directory).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// A replica of that Redis to serve queries from (repeatable; in the environment, a
    /// comma-separated list). Read-your-writes still holds: a query with `min_position` reads
    /// from a replica only once that replica has replicated the position.
    #[arg(long = "redis-replica", env = "ORDO_REDIS_REPLICAS", value_delimiter = ',')]
    pub redis_replicas: Vec<String>,
    /// Secret for signing tokens, at least 32 bytes (default: one generated into the data
    /// directory on first start).
    #[arg(long, env = "ORDO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The shop's currency (ISO 4217).
    #[arg(long, env = "ORDO_CURRENCY", default_value = "EUR")]
    pub currency: String,
    /// How long a cart and its stock holds live without changes, e.g. `15m`.
    #[arg(long, env = "ORDO_CART_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub cart_ttl: Duration,
    /// How long one payment authorization attempt may take.
    #[arg(long, env = "ORDO_PAYMENT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub payment_timeout: Duration,
    /// This instance's name in logs, metrics and role leases (default: host name and pid).
    #[arg(long, env = "ORDO_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// How long a role's lease lives without renewal: a dead instance's roles are taken over
    /// after about this long (shared stores only).
    #[arg(long, env = "ORDO_LEASE_TTL", default_value = "5s", value_parser = parse_lease_ttl)]
    pub lease_ttl: Duration,
    /// Where servers sharing a store keep role leases, the checkout process's checkpoint and
    /// cart due times, and Idempotency-Key records: `store` (the PostgreSQL store's database;
    /// the default there) or `redis` (the Redis above, which must persist: the default, and the
    /// only choice, on KurrentDB). One server on the embedded store keeps them in files.
    #[arg(long, env = "ORDO_COORDINATION", value_enum)]
    pub coordination: Option<Coordination>,
    /// Threads of the background runtime, where the projections, the checkout process and
    /// the outbox run apart from the request handlers (ADR 0025).
    #[arg(long, env = "ORDO_BACKGROUND_THREADS", default_value_t = 1,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub background_threads: usize,
}

fn parse_lease_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if ttl < Duration::from_secs(1) {
        return Err("a lease must live at least 1s".into());
    }
    Ok(ttl)
}

/// The default instance name: host name and pid, unique on a network of servers.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ordo".to_owned());
    format!("{host}-{}", std::process::id())
}

type Operations = (
    operations::Operations,
    catalogue::Catalogue,
    carts::Carts,
    orders::Orders,
    admin::Admin,
    log::Log,
);

fn service(app: Arc<App>, base: &str) -> OpenApiService<Operations, ()> {
    let operations = (
        operations::Operations(app.clone()),
        catalogue::Catalogue(app.clone()),
        carts::Carts(app.clone()),
        orders::Orders(app.clone()),
        admin::Admin(app.clone()),
        log::Log(app),
    );
    OpenApiService::new(operations, "Ordo", env!("CARGO_PKG_VERSION"))
        .description(description())
        .server(base.to_owned())
}

/// The document's description, with every problem type a command can answer with.
fn description() -> String {
    let mut text = String::from(
        "Event-sourced order backend for online shops. Every error is an RFC 9457 problem \
         document. Commands answer with a receipt whose `position` a query accepts as \
         `min_position`, to read its own writes. Every POST accepts an `Idempotency-Key`.\n\n\
         Refusals have a type of their own, so a client can tell them apart without parsing \
         the detail:\n\n| type | status | title |\n| --- | --- | --- |\n",
    );
    for kind in problem::REFUSALS {
        text.push_str(&format!(
            "| `/problems/{}` | {} | {} |\n",
            kind.slug, kind.status, kind.title
        ));
    }
    text
}

/// The API document as `ordo openapi` prints it (and `schemas/openapi.json` holds).
pub fn openapi_document() -> anyhow::Result<String> {
    // Building the document touches no I/O: the Redis connection is lazy and never used (it
    // only needs a runtime to exist).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _inside = runtime.enter();
    let client = redis::Client::open("redis://127.0.0.1:1")?;
    let reads = ReadModels::new(client.get_connection_manager_lazy(Default::default())?);
    let app = App {
        store: None,
        shop: None,
        reads: Arc::new(reads),
        redis: client,
        metrics: None,
        keys: Keys::new(b"the API document signs nothing"),
        roles: None,
        process_state: None,
    };
    Ok(service(Arc::new(app), "http://127.0.0.1:8080").spec())
}

/// Runs `ordo openapi`.
pub fn print_openapi() -> anyhow::Result<()> {
    println!("{}", openapi_document()?);
    Ok(())
}

/// Ready sockets a request worker takes from the kernel when it has nothing else to run.
const IO_EVENTS_PER_TICK: usize = 64;

/// Ready sockets a request worker takes while it still has tasks queued (ADR 0026).
const IO_EVENTS_PER_BUSY_TICK: usize = 8;

/// The request handlers' runtime: one worker per core, taking arrivals a few at a time.
///
/// By default a worker takes up to 1,024 ready sockets whenever it looks, and each becomes a
/// task in its queue, which holds 256; the rest spill into the runtime's shared queue, where
/// every task woken from another thread waits too: a stream's deciding task once the store's
/// writer has committed, a request whose answer came from the background runtime. In a burst
/// (a flash sale's thousand add-to-carts at once) those waited behind the whole burst, up to
/// 33 ms, and the units sold out that much later. Taken a few at a time, the arrivals wait in
/// the kernel instead, and work already started finishes first (ADR 0026).
fn request_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .max_io_events_per_tick(IO_EVENTS_PER_TICK)
        .max_io_events_per_busy_tick(IO_EVENTS_PER_BUSY_TICK)
        .enable_all()
        .build()
}

/// Runs `ordo serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = request_runtime()?;
    let background = background::runtime(args.background_threads)?;
    let served = runtime.block_on(serve(args, background.handle()));
    // `serve` joined every role; what is left there are idle Redis connection drivers, which
    // need no waiting for.
    background.shutdown_background();
    served
}

/// Histogram buckets of the metrics that count events (per commit, per follower batch).
const EVENT_COUNT_BUCKETS: &[f64] =
    &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 5_000.0];

async fn serve(
    args: &ServeArgs,
    background_runtime: &tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])?
        // Counts, not seconds: how well group commit is batching, and events per follower batch.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("ordo_store_events_per_commit".into()),
            EVENT_COUNT_BUCKETS,
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("ordo_follower_batch_events".into()),
            EVENT_COUNT_BUCKETS,
        )?
        // A count too: version races lost before a command committed.
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(
                ordo_eventstore::command::CONFLICTS_METRIC.into(),
            ),
            &[0.0, 1.0, 2.0, 3.0, 5.0, 10.0],
        )?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let config = ShopConfig {
        currency: Currency::parse(&args.currency)
            .with_context(|| format!("--currency {}", args.currency))?,
        cart_ttl: args.cart_ttl,
        ..ShopConfig::default()
    };
    let keys = Keys::load(args.jwt_secret.as_deref(), &args.data)?;
    let instance = args.instance_id.clone().unwrap_or_else(default_instance_id);
    let store = Arc::new(args.store.open(&args.data, Access::Write).await?);
    let (redis, private_redis) =
        redis_for(&args.data, args.redis_url.as_deref(), PrivateRedisUse::Own).await?;
    let (requests, process_state, home) =
        coordination::bookkeeping(&store, args.coordination, &redis, &args.data, &keys, &instance)?;
    let requests = Arc::new(requests);
    let lease_config = LeaseConfig { ttl: args.lease_ttl, ..LeaseConfig::default() };
    let roles = Arc::new(Roles::new(home, instance.clone(), lease_config));
    let private_redis =
        private_redis.map(|server| SupervisedRedis::watch(server, args.data.redis_dir()));
    let (stop, stopping) = watch::channel(false);
    let purge = tokio::spawn(purge_requests(requests.clone()));
    let shop = Arc::new(Shop::new(store.clone(), config));
    let process_state = Arc::new(process_state);
    let process_config =
        ProcessConfig { payment_timeout: args.payment_timeout, ..ProcessConfig::default() };
    let processes = Arc::new(Processes::new(
        shop.clone(),
        Arc::new(Simulator::default()),
        process_state.clone(),
        process_config,
    ));
    let work = background::Work {
        roles: roles.clone(),
        store: store.clone(),
        redis: redis.clone(),
        processes,
        process_state: process_state.clone(),
    };
    let (mut background, applied) = background::start(work, &stopping, background_runtime);

    let mut connections = Vec::with_capacity(READ_CONNECTIONS);
    for _ in 0..READ_CONNECTIONS {
        let connection = redis
            .get_connection_manager_with_config(fail_fast())
            .await
            .context("connecting to Redis")?;
        connections.push(connection);
    }
    let mut replicas = Vec::with_capacity(args.redis_replicas.len());
    for url in &args.redis_replicas {
        let client = redis::Client::open(url.as_str())
            .with_context(|| format!("--redis-replica {}", ordo_eventstore::any::redact(url)))?;
        let mut pool = Vec::with_capacity(READ_CONNECTIONS);
        for _ in 0..READ_CONNECTIONS {
            // Lazy: a replica that is down at start is skipped until it answers.
            pool.push(client.get_connection_manager_lazy(fail_fast())?);
        }
        replicas.push(Replica::new(ordo_eventstore::any::redact(url), pool));
    }
    let reads = ReadModels::pooled(connections).with_replicas(replicas).woken_by(applied);
    let app = Arc::new(App {
        store: Some(store.clone()),
        shop: Some(shop),
        reads: Arc::new(reads),
        redis: redis.clone(),
        metrics: Some(metrics),
        keys: keys.clone(),
        roles: Some(roles),
        process_state: Some(process_state),
    });
    let base = format!("http://{}", args.listen);
    let service = service(app, &base);
    let routes = Routes::from_spec(&service.spec())?;
    // Errors become problem documents inside the front layer, which works with responses.
    let docs = Route::new()
        .nest("/docs", service.swagger_ui())
        .at("/openapi.json", service.spec_endpoint())
        .catch_all_error(problem_response);
    let api = Api(service.into_endpoint());
    // The web console's page and modules are answered in front of the API (ADR 0015), and
    // every log line of a request carries its id, echoed as `x-request-id`.
    let app = Front { api, docs, routes, requests, keys };
    let listener = TcpListener::bind(args.listen.clone());
    eprintln!(
        "ordo: {instance} serving on {base} (console at {base}/, API docs at {base}/docs) with the {} store; ctrl-c to stop",
        store.kind()
    );
    Server::new(listener)
        .run_with_graceful_shutdown(app, shutdown_signal(), Some(DRAIN))
        .await
        .with_context(|| format!("serving on {}", args.listen))?;

    eprintln!("ordo: stopping: roles finish their batch and are handed back, the store flushes");
    let _ = stop.send(true);
    purge.abort();
    while background.join_next().await.is_some() {}
    store.close();
    drop(private_redis);
    Ok(())
}

/// Query connections fail fast while Redis is away: one reconnect attempt with a 100 ms
/// connect timeout, so a query answers 503 in about that long instead of waiting out the
/// default backoff (seconds). Queries have nothing to wait for; the client retries.
fn fail_fast() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(100))
        .set_connection_timeout(Some(Duration::from_millis(100)))
        .set_response_timeout(Some(Duration::from_secs(2)))
}

/// Drops stored idempotent responses past their retention, at start and then hourly.
async fn purge_requests(requests: Arc<Idempotency>) {
    let mut every = tokio::time::interval(Duration::from_secs(60 * 60));
    loop {
        every.tick().await;
        match requests.purge().await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "purged expired idempotent responses"),
            Err(error) => tracing::warn!(error = ?error, "could not purge idempotent responses"),
        }
    }
}

/// Resolves on SIGTERM or ctrl-c.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

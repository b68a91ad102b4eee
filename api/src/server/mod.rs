//! `ordo serve` and `ordo openapi`: the HTTP server and its API document.
//!
//! Serving opens the embedded store in the data directory, uses Redis from `REDIS_URL` or a
//! private `redis-server` under the data directory, keeps every projection running on its
//! active version, and answers HTTP until SIGTERM or ctrl-c. Then in-flight requests finish,
//! projections stop after their current batch, the store flushes and the private Redis stops.

mod api;
mod problem;

use crate::environment::{redis_for, DataDir};
use anyhow::Context;
use api::Api;
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore};
use ordo_projections::query::ReadModels;
use ordo_projections::runner::RunnerConfig;
use ordo_projections::supervisor::supervise;
use ordo_projections::views::{CartView, OrderView, ProductView, View};
use poem::listener::TcpListener;
use poem::{EndpointExt, Route, Server};
use poem_openapi::OpenApiService;
use std::sync::Arc;
use tokio::sync::watch;

/// Options of `ordo serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ORDO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Data directory.
    #[command(flatten)]
    pub data: DataDir,
    /// Redis for the read models (default: a private server under the data directory).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
}

fn service(api: Api, base: &str) -> OpenApiService<Api, ()> {
    OpenApiService::new(api, "Ordo", env!("CARGO_PKG_VERSION"))
        .description(
            "Event-sourced order backend for online shops. Errors are RFC 9457 problem documents.",
        )
        .server(base.to_owned())
}

/// The API document as `ordo openapi` prints it (and `schemas/openapi.json` holds).
pub fn openapi_document() -> anyhow::Result<String> {
    // Building the document touches no I/O: the Redis connection is lazy and never used (it
    // only needs a runtime to exist).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _inside = runtime.enter();
    let client = redis::Client::open("redis://127.0.0.1:1")?;
    let reads = ReadModels::new(client.get_connection_manager_lazy(Default::default())?);
    let api = Api { store: None, reads: Arc::new(reads), redis: client, metrics: None };
    Ok(service(api, "http://127.0.0.1:8080").spec())
}

/// Runs `ordo openapi`.
pub fn print_openapi() -> anyhow::Result<()> {
    println!("{}", openapi_document()?);
    Ok(())
}

/// Runs `ordo serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(args.data.store_path()))?);
    let (redis, private_redis) = redis_for(&args.data, args.redis_url.as_deref()).await?;
    let (stop, stopping) = watch::channel(false);
    let mut projections = tokio::task::JoinSet::new();
    spawn_projection::<OrderView>(&mut projections, &store, &redis, &stopping);
    spawn_projection::<ProductView>(&mut projections, &store, &redis, &stopping);
    spawn_projection::<CartView>(&mut projections, &store, &redis, &stopping);

    let reads =
        ReadModels::new(redis.get_connection_manager().await.context("connecting to Redis")?);
    let api = Api {
        store: Some(store.clone()),
        reads: Arc::new(reads),
        redis: redis.clone(),
        metrics: Some(metrics),
    };
    let base = format!("http://{}", args.listen);
    let service = service(api, &base);
    let app = Route::new()
        .nest("/docs", service.swagger_ui())
        .at("/openapi.json", service.spec_endpoint())
        .nest("/", service)
        .around(observe)
        .with(poem::middleware::Tracing)
        // Outermost: every log line of a request carries its id, echoed as `x-request-id`
        // (a caller's own id is kept, so logs join up across services).
        .with(poem::middleware::RequestId::default().reuse_id(poem::middleware::ReuseId::Use));
    let listener = TcpListener::bind(args.listen.clone());
    eprintln!("ordo: serving on {base} (API docs at {base}/docs); ctrl-c to stop");
    Server::new(listener)
        .run_with_graceful_shutdown(app, shutdown_signal(), Some(api::DRAIN))
        .await
        .with_context(|| format!("serving on {}", args.listen))?;

    eprintln!("ordo: stopping: projections finish their batch, the store flushes");
    let _ = stop.send(true);
    while let Some(result) = projections.join_next().await {
        if let Ok(Err(error)) = result {
            tracing::warn!(%error, "projection stopped with an error");
        }
    }
    store.close();
    drop(private_redis);
    Ok(())
}

/// Counts every request by operation, method and status, and times it by operation. The
/// operation id (not the path) labels it, so label values stay few whatever ids clients send.
async fn observe<E: poem::Endpoint>(next: E, req: poem::Request) -> poem::Result<poem::Response> {
    let method = req.method().as_str().to_owned();
    let started = std::time::Instant::now();
    let response = next.get_response(req).await;
    let operation = response.data::<poem_openapi::OperationId>().map_or("other", |o| o.0);
    let status = response.status().as_u16().to_string();
    metrics::counter!("ordo_http_requests_total", "operation" => operation, "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("ordo_http_request_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    Ok(response)
}

fn spawn_projection<V: View>(
    set: &mut tokio::task::JoinSet<Result<(), ordo_projections::runner::ProjectionError>>,
    store: &Arc<EmbeddedStore>,
    redis: &redis::Client,
    stopping: &watch::Receiver<bool>,
) {
    let (applied, _) = watch::channel(0);
    set.spawn(supervise::<V, _>(
        store.clone(),
        redis.clone(),
        RunnerConfig::default(),
        applied,
        stopping.clone(),
    ));
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

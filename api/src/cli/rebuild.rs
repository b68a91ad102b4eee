//! `ordo rebuild`: rebuild read models from the event log into a fresh version, switch, clean up.

use crate::cli::environment::{redis_for, DataDir, PrivateRedisUse, StoreArgs};
use crate::cli::progress::Progress;
use anyhow::Context;
use indicatif::MultiProgress;
use ordo_eventstore::{Access, AnyStore, EventStore};
use ordo_projections::rebuild::{rebuild, RebuildReport};
use ordo_projections::runner::{fenced_connection, RunnerConfig};
use ordo_projections::views::{CartView, OrderView, ProductView, View};
use std::sync::Arc;
use std::time::Duration;

/// Projections `ordo rebuild` knows.
pub const PROJECTIONS: [&str; 3] = ["orders", "catalogue", "carts"];

/// Options of `ordo rebuild`.
#[derive(clap::Args, Debug)]
pub struct RebuildArgs {
    /// Rebuild only this projection (orders, catalogue, carts); default: all of them.
    #[arg(long, value_parser = PROJECTIONS)]
    pub projection: Option<String>,
    /// Data directory.
    #[command(flatten)]
    pub data: DataDir,
    /// The event store to read.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Redis to rebuild in (default: $REDIS_URL, else the private server of the data directory).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// How long old keys stay after the switch, for queries already reading them.
    #[arg(long, default_value_t = 2_000)]
    pub grace_ms: u64,
}

/// Runs `ordo rebuild`.
pub fn run(args: &RebuildArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = Arc::new(args.store.open(&args.data, Access::Read).await?);
        let (redis, _private) = redis_for(&args.data, args.redis_url.as_deref(), PrivateRedisUse::Adopt).await?;
        let grace = Duration::from_millis(args.grace_ms);
        let wanted = |name: &str| args.projection.as_deref().is_none_or(|only| only == name);
        // All at once: each is a loop of folding a batch, then waiting for Redis to write it,
        // so three of them keep both Ordo and Redis busy where one alone leaves each idle
        // half the time. The grace period is waited out once, not once per projection.
        let bars = MultiProgress::new();
        let reports = tokio::try_join!(
            rebuild_if::<OrderView>(wanted("orders"), &store, &redis, grace, &bars),
            rebuild_if::<ProductView>(wanted("catalogue"), &store, &redis, grace, &bars),
            rebuild_if::<CartView>(wanted("carts"), &store, &redis, grace, &bars),
        )?;
        for report in [reports.0, reports.1, reports.2].into_iter().flatten() {
            let (read, own) = (report.events_read, report.events);
            // Events/s of the log replayed, over the replay alone: the grace period is a wait,
            // not work.
            let seconds = report.replayed_in.as_secs_f64();
            println!(
                "rebuilt {}: v{} active at position {}, {read} events in {seconds:.2}s ({:.0} events/s), {own} of them its own; {} old keys removed after the grace period",
                report.projection,
                report.version,
                report.position.map_or("-".to_owned(), |p| p.to_string()),
                read as f64 / seconds.max(1e-9),
                report.removed_keys
            );
        }
        anyhow::Ok(())
    })
}

/// Rebuilds `V` if `wanted`.
async fn rebuild_if<V: View>(
    wanted: bool,
    store: &Arc<AnyStore>,
    redis: &redis::Client,
    grace: Duration,
    bars: &MultiProgress,
) -> anyhow::Result<Option<RebuildReport>> {
    if !wanted {
        return Ok(None);
    }
    let connection = fenced_connection(redis).await.context("connecting to Redis")?;
    // A total to show progress against, where positions count events.
    let head = store.last_position().await?;
    let target = head.filter(|_| store.positions_count_events()).map(|p| p.0 + 1);
    let progress = Progress::among(Some(bars), V::PROJECTION, target);
    let report =
        rebuild::<V, _>(store.clone(), connection, RunnerConfig::default(), grace, |p, _| {
            progress.update(p.0 + 1)
        })
        .await
        .with_context(|| format!("rebuilding {}", V::PROJECTION))?;
    progress.finish();
    Ok(Some(report))
}

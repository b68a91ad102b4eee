//! `ordo bench store`: append, read and catch-up throughput of an event store: a temporary
//! embedded file by default, or PostgreSQL (`--store postgres` starts a private cluster for the
//! run; `--store postgres://...` uses yours, best with a throwaway `?schema=`).

use super::{percentile_ms, rate};
use ordo_eventstore::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Options of `ordo bench store`.
#[derive(clap::Args, Debug)]
pub struct StoreBenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Durability mode: `fsync` (default, acknowledged means on disk) or `relaxed`.
    #[arg(long, default_value = "fsync", value_parser = ["fsync", "relaxed"])]
    pub durability: String,
    /// Open the file exclusively (no read-only handles beside the writer), as with
    /// `EmbeddedConfig::exclusive`; default: shared, as `ordo serve` runs.
    #[arg(long)]
    pub exclusive: bool,
    /// Single-event appends each of the 64 concurrent writers makes.
    #[arg(long, default_value_t = 2_000)]
    pub per_writer: usize,
    /// Directory for the temporary store (default: the system temp dir). Use the disk you
    /// will run on: fsync cost is the disk's.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Another store: `postgres` (a private PostgreSQL cluster started for the run, fsync and
    /// synchronous_commit on) or a `postgres://` URL (its `?schema=` receives bench streams).
    #[arg(long)]
    pub store: Option<String>,
}

const PAYLOAD_BYTES: usize = 120;
const WRITERS: usize = 64;

fn new_event() -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        event_type: "BenchEvent".into(),
        schema_version: 1,
        payload: vec![7; PAYLOAD_BYTES],
        metadata: EventMetadata {
            correlation_id: Some(Uuid::now_v7()),
            ..EventMetadata::default()
        },
    }
}

/// Commits, events, apply and commit microseconds so far (the embedded writer counts them).
fn writer_counters(store: &AnyStore) -> Option<[u64; 4]> {
    use std::sync::atomic::Ordering::Relaxed;
    let AnyStore::Embedded(store) = store else { return None };
    let s = store.stats();
    Some([
        s.commits.load(Relaxed),
        s.events.load(Relaxed),
        s.apply_micros.load(Relaxed),
        s.commit_micros.load(Relaxed),
    ])
}

/// Runs every store benchmark and prints the figures.
pub fn run(args: &StoreBenchArgs) -> anyhow::Result<()> {
    let durability = match args.durability.as_str() {
        "relaxed" => Durability::Relaxed,
        _ => Durability::Fsync,
    };
    let dir = super::temp_dir(args.dir.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (_cluster, url) = match args.store.as_deref() {
        Some("postgres") => {
            let cluster = ordo_eventstore::postgres::private::PrivatePostgres::start()?;
            let url = format!("{}?schema=ordo_bench", cluster.url());
            (Some(cluster), Some(url))
        }
        other => (None, other.map(str::to_owned)),
    };
    let figures = runtime.block_on(async {
        let (store, mode) = match &url {
            Some(url) => {
                let location = StoreLocation::parse(Some(url), dir.path());
                (AnyStore::open(&location, Access::Write).await?, "postgres".to_owned())
            }
            None => {
                let mut config = EmbeddedConfig::new(dir.path().join("bench.redb"));
                config.durability = durability;
                config.exclusive = args.exclusive;
                let exclusive = args.exclusive || durability == Durability::Relaxed;
                let mode = if exclusive { "exclusive" } else { "shared" };
                (AnyStore::Embedded(EmbeddedStore::open(config)?), mode.to_owned())
            }
        };
        measure(Arc::new(store), durability, mode, args.per_writer).await
    })?;
    super::print(&figures, args.json)?;
    Ok(())
}

async fn measure(
    store: Arc<AnyStore>,
    durability: Durability,
    mode: String,
    per_writer: usize,
) -> anyhow::Result<serde_json::Value> {
    // One writer, one event per append: the latency-bound case.
    let single = StreamName::new("bench-single")?;
    let n1 = 2_000;
    let started = Instant::now();
    for _ in 0..n1 {
        store.append(&single, ExpectedVersion::Any, vec![new_event()]).await?;
    }
    let append_1w_eps = rate(n1, started.elapsed());

    // 64 concurrent writers, one event per append: what group commit is for.
    let before = writer_counters(&store);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(WRITERS);
    for w in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamName::new(format!("bench-w{w}"))?;
            let mut latencies = Vec::with_capacity(per_writer);
            for _ in 0..per_writer {
                let t = Instant::now();
                store.append(&stream, ExpectedVersion::Any, vec![new_event()]).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(WRITERS * per_writer);
    for task in tasks {
        latencies.extend(task.await??);
    }
    let append_64w_eps = rate(WRITERS * per_writer, started.elapsed());
    let append_64w_p50_ms = percentile_ms(&mut latencies, 50.0);
    let append_64w_p99_ms = percentile_ms(&mut latencies, 99.0);
    let writer_64w = match (before, writer_counters(&store)) {
        (Some(before), Some(after)) => {
            let commits = (after[0] - before[0]).max(1) as f64;
            serde_json::json!({
                "commits": after[0] - before[0],
                "avg_events_per_commit": ((after[1] - before[1]) as f64 / commits * 10.0).round() / 10.0,
                "avg_apply_ms": ((after[2] - before[2]) as f64 / commits).round() / 1_000.0,
                "avg_commit_ms": ((after[3] - before[3]) as f64 / commits).round() / 1_000.0,
            })
        }
        _ => serde_json::Value::Null,
    };

    // One writer, 100 events per append.
    let batch_stream = StreamName::new("bench-batch")?;
    let batches = 300;
    let started = Instant::now();
    for _ in 0..batches {
        store
            .append(&batch_stream, ExpectedVersion::Any, (0..100).map(|_| new_event()).collect())
            .await?;
    }
    let append_batch100_eps = rate(batches * 100, started.elapsed());

    let total = n1 + WRITERS * per_writer + batches * 100;
    let started = Instant::now();
    let mut read = 0;
    let mut from = SubscribeFrom::Start;
    loop {
        let page = store.read_all(from, 4_096).await?;
        let Some(last) = page.last() else { break };
        from = SubscribeFrom::After(last.position);
        read += page.len();
    }
    let read_all_eps = rate(read, started.elapsed());

    let started = Instant::now();
    let mut sub = store.subscribe_all(SubscribeFrom::Start, EventFilter::all()).await?;
    let mut caught_up = 0;
    while caught_up < total {
        caught_up += sub.next_batch(4_096).await?.len();
    }
    let catchup_eps = rate(caught_up, started.elapsed());
    store.close();

    Ok(serde_json::json!({
        "store": store.kind(),
        "durability": if store.kind() == "embedded" { durability.as_str() } else { "synchronous_commit" },
        "file_mode": mode,
        "events_total": total,
        "payload_bytes": PAYLOAD_BYTES,
        "append_1w_eps": append_1w_eps,
        "append_64w_eps": append_64w_eps,
        "append_64w_p50_ms": append_64w_p50_ms,
        "append_64w_p99_ms": append_64w_p99_ms,
        "append_64w_writer": writer_64w,
        "append_batch100_eps": append_batch100_eps,
        "read_all_eps": read_all_eps,
        "catchup_eps": catchup_eps,
    }))
}

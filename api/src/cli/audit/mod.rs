//! Audit tools over the event log: `ordo replay`, `ordo audit verify`, `ordo export`, `ordo import`.
//!
//! They read the store read-only, so they work while `ordo serve` runs, and they work on every
//! backend `--store` names (the hash chain is checked on the embedded store and PostgreSQL;
//! KurrentDB has none).
//!
//! Here the source every tool reads and `ordo audit verify`; `replay.rs` folds a stream into
//! its aggregate's states; `transfer.rs` writes and loads JSON lines.

mod replay;
mod transfer;

pub use replay::{replay, ReplayArgs};
pub use transfer::{export, import, ExportArgs, ImportArgs};

use crate::cli::environment::{DataDir, StoreArgs};
use ordo_eventstore::*;

/// Where to read events from.
#[derive(clap::Args, Debug, Clone)]
pub struct Source {
    /// Data directory.
    #[command(flatten)]
    pub data: DataDir,
    /// The event store to read.
    #[command(flatten)]
    pub store: StoreArgs,
}

const PAGE: usize = 1_000;

/// Opens the source read-only and runs `f` on it inside a runtime.
fn with_store<T, F, Fut>(source: &Source, f: F) -> anyhow::Result<T>
where
    F: FnOnce(AnyStore) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let store = source.store.open(&source.data, Access::Read).await?;
        f(store).await
    })
}

/// Every event of `stream`, oldest first.
async fn stream_events(
    store: &AnyStore,
    stream: &StreamName,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let mut events = Vec::new();
    loop {
        let page = store.read_stream(stream, events.len() as u64, Direction::Forward, PAGE).await?;
        let done = page.len() < PAGE;
        events.extend(page);
        if done {
            return Ok(events);
        }
    }
}

/// Options of `ordo audit verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Where to read.
    #[command(flatten)]
    pub source: Source,
}

/// Runs `ordo audit verify`: the hash chain (embedded store), then every event decoded with
/// today's code. Fails naming the first bad position.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    with_store(&args.source, |store| async move {
        let progress = crate::cli::progress::Progress::new("decode", None);
        let report = ordo_eventstore::audit::verify(&store, |n| progress.update(n)).await?;
        progress.finish();
        println!("{}", report.summary(store.kind()));
        Ok(())
    })
}

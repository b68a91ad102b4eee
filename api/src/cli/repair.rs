//! `ordo repair`: makes a store file left open by a killed server readable by the offline tools.
//!
//! redb repairs a file that was not closed cleanly when it is next opened for writing; a
//! read-only open (audit, export, replay) cannot, and says so. Starting `ordo serve` repairs
//! too, but an operator investigating a crash may not want to start serving first.

use crate::cli::environment::DataDir;
use anyhow::Context;
use ordo_eventstore::{EmbeddedConfig, EmbeddedStore};

/// Options of `ordo repair`.
#[derive(clap::Args, Debug)]
pub struct RepairArgs {
    /// Data directory.
    #[command(flatten)]
    pub data: DataDir,
}

/// Runs `ordo repair`: opens the store for writing (which repairs it), checks the hash chain,
/// and closes it cleanly.
pub fn run(args: &RepairArgs) -> anyhow::Result<()> {
    let path = args.data.store_path();
    anyhow::ensure!(path.exists(), "no event store at {}", path.display());
    let store = EmbeddedStore::open(EmbeddedConfig::new(&path))
        .context("repair needs the file to itself: stop `ordo serve` first")?;
    let report = store.verify().with_context(|| format!("{} is damaged", path.display()))?;
    store.close();
    println!("{}: closed cleanly; hash chain intact over {} events", path.display(), report.events);
    Ok(())
}

//! Where Ordo keeps its data and which Redis it talks to: shared by every subcommand.

use anyhow::Context;
use ordo_eventstore::{Access, AnyStore, StoreLocation};
use ordo_projections::redis_server::{answers_once_loaded, shut_down_orphan, PrivateRedis};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The data directory flag every command shares.
#[derive(clap::Args, Debug, Clone)]
pub struct DataDir {
    /// Directory holding the event store (`events.redb`) and the private Redis (`redis/`).
    #[arg(long, env = "ORDO_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

impl DataDir {
    /// The event store file.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("events.redb")
    }

    /// The private Redis directory.
    pub fn redis_dir(&self) -> PathBuf {
        self.data_dir.join("redis")
    }
}

/// The `--store` flag every command that touches the log shares.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StoreArgs {
    /// The event store: `postgres://user@host/db` (optionally `?schema=name`),
    /// `kurrentdb://host:2113`, or a file path; default: `events.redb` in the data directory.
    #[arg(long = "store", env = "ORDO_STORE")]
    pub url: Option<String>,
}

impl StoreArgs {
    /// Where the store is, given the data directory for the default file.
    pub fn location(&self, data: &DataDir) -> StoreLocation {
        StoreLocation::parse(self.url.as_deref(), &data.store_path())
    }

    /// Opens it; `Read` opens the embedded file read-only, beside a running server.
    pub async fn open(&self, data: &DataDir, access: Access) -> anyhow::Result<AnyStore> {
        let location = self.location(data);
        if let (StoreLocation::Embedded(path), Access::Read) = (&location, access) {
            if !path.exists() {
                anyhow::bail!(
                    "no event store at {} (nothing has been written yet)",
                    path.display()
                );
            }
        }
        match AnyStore::open(&location, access).await {
            Ok(store) => Ok(store),
            // Already names the store.
            Err(e @ ordo_eventstore::StoreError::Open { .. }) => Err(e.into()),
            Err(e) => Err(anyhow::Error::new(e)
                .context(format!("opening the event store {}", location.describe()))),
        }
    }
}

/// A private Redis kept running: if it dies (killed, out of memory), it is started again on
/// its own data (its append-only file) within about a second, and the connections, which
/// reconnect on their own, find it on the same socket. It stops when this handle drops.
pub struct SupervisedRedis {
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
}

impl SupervisedRedis {
    /// Watches `server`, whose files are in `dir`.
    pub fn watch(mut server: PrivateRedis, dir: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        // A thread of its own: a restarted server dies with the thread that started it (see
        // `PrivateRedis`), and this one lives exactly as long as the supervision.
        let watcher = std::thread::Builder::new()
            .name("ordo-redis-watch".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    if !server.has_exited() {
                        continue;
                    }
                    tracing::warn!("the private Redis exited; starting it again on its data");
                    match PrivateRedis::start(&dir, true) {
                        Ok(restarted) => {
                            server = restarted;
                            tracing::info!("the private Redis is back");
                        }
                        Err(error) => {
                            tracing::error!(%error, "could not restart the private Redis; retrying")
                        }
                    }
                }
                drop(server);
            })
            .ok();
        Self { stop, watcher }
    }
}

impl Drop for SupervisedRedis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// Whether a command may share the private Redis another process started in the data
/// directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrivateRedisUse {
    /// Tools beside a running `ordo serve` (`ordo rebuild`) use the server's own Redis.
    Adopt,
    /// `ordo serve` owns the data directory (the store admits one writer): a Redis already on
    /// its socket was left by a server that was killed, so it is shut down and replaced by one
    /// that lives and dies with this process.
    Own,
}

/// The Redis to use: `url` if given; else the private one in the data directory (see
/// [`PrivateRedisUse`]); else a private server started now and stopped when the handle drops.
pub async fn redis_for(
    data: &DataDir,
    url: Option<&str>,
    private: PrivateRedisUse,
) -> anyhow::Result<(redis::Client, Option<PrivateRedis>)> {
    if let Some(url) = url {
        return Ok((
            redis::Client::open(url).with_context(|| format!("invalid Redis URL {url}"))?,
            None,
        ));
    }
    let socket = data.redis_dir().join("redis.sock");
    match private {
        PrivateRedisUse::Adopt if answers_once_loaded(&socket) => {
            let client = redis::Client::open(format!("redis+unix://{}", socket.display()))?;
            return Ok((client, None));
        }
        PrivateRedisUse::Adopt => {}
        PrivateRedisUse::Own => {
            if shut_down_orphan(&socket)? {
                tracing::warn!(socket = %socket.display(), "shut down a private Redis left by a server that was killed");
            }
        }
    }
    let server = PrivateRedis::start(&data.redis_dir(), true)?;
    let client = redis::Client::open(server.url())?;
    Ok((client, Some(server)))
}

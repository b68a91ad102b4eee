//! Keeps one projection running for a server: on the active read-model version, following a
//! switch made by `ordo rebuild` (possibly in another process), until shutdown.
//!
//! Why a supervisor rather than a flag inside the runner: when the active version changes, the
//! runner on the old version is simply dropped and a new one starts on the new version from
//! that version's own checkpoint. Dropping is safe at any point because every batch is one
//! `MULTI/EXEC` fenced by the checkpoint: a batch is either applied or not, never half.

use crate::keys::active_version_key;
use crate::runner::{fenced_connection, ProjectionError, Runner, RunnerConfig};
use crate::views::View;
use ordo_eventstore::EventStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the active version is looked up.
pub const ACTIVE_POLL: Duration = Duration::from_millis(500);

/// Runs `V` on the active version until `shutdown` turns true. `applied` receives the runner's
/// applied positions (`position + 1`), whichever version it is on, for read-your-writes, and 0
/// once it stops: queries then no longer wait for a runner that is not running here.
pub async fn supervise<V: View, S: EventStore>(
    store: Arc<S>,
    client: redis::Client,
    config: RunnerConfig,
    applied: watch::Sender<u64>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ProjectionError> {
    let applied = NotRunningOnDrop(applied);
    let applied = &applied.0;
    let mut con = client.get_connection_manager().await?;
    while !*shutdown.borrow() {
        let version = active_version(&mut con, V::PROJECTION).await?;
        let mut runner = Runner::<V, S>::new(
            store.clone(),
            fenced_connection(&client).await?,
            version,
            config.clone(),
        )
        .await?;
        // Straight to the queries' channel: a position forwarded by this task instead waited
        // for the task's next turn on its thread, behind the other roles' batches.
        runner.report_to(applied.clone());
        let switched = async {
            loop {
                tokio::time::sleep(ACTIVE_POLL).await;
                match active_version(&mut con.clone(), V::PROJECTION).await {
                    Ok(now) if now != version => return now,
                    _ => {}
                }
            }
        };
        tokio::select! {
            result = runner.run(None, |_| {}) => result?,
            to = switched => tracing::info!(projection = V::PROJECTION, from = version, to, "following the switch to a rebuilt version"),
            _ = shutdown.changed() => {}
        }
    }
    Ok(())
}

/// Reports 0 (nothing applied here) when dropped, however the supervisor ended.
struct NotRunningOnDrop(watch::Sender<u64>);

impl Drop for NotRunningOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(0);
    }
}

async fn active_version(
    con: &mut redis::aio::ConnectionManager,
    projection: &str,
) -> Result<u32, redis::RedisError> {
    let version: Option<u32> =
        redis::cmd("GET").arg(active_version_key(projection)).query_async(con).await?;
    Ok(version.unwrap_or(1))
}

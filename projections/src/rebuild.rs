//! Rebuilding a projection from the event log into a fresh version, without downtime.
//!
//! The rebuild fills `v<N+1>` while queries keep reading the active `v<N>`, then switches the
//! active version in one transaction and, after a grace period for in-flight readers, deletes
//! every other version's keys. The version being built is recorded, so an interrupted rebuild
//! resumes from its own checkpoint when run again.

use crate::keys::{active_version_key, building_version_key, Namespace};
use crate::runner::{ProjectionError, Runner, RunnerConfig};
use crate::views::View;
use ordo_eventstore::{EventStore, Position};
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a rebuild did.
#[derive(Clone, Debug)]
pub struct RebuildReport {
    /// Projection rebuilt.
    pub projection: &'static str,
    /// The version now active.
    pub version: u32,
    /// Last global position applied.
    pub position: Option<Position>,
    /// Events applied.
    pub events: u64,
    /// Wall time to apply the log and switch to the new version: what events/s are measured
    /// against.
    pub replayed_in: Duration,
    /// Wall time in all, including the grace period before old keys were removed.
    pub elapsed: Duration,
    /// Keys of older versions removed.
    pub removed_keys: u64,
}

/// Rebuilds `V` from the whole log and makes it active. `progress` sees `(applied, target)`.
pub async fn rebuild<V: View, S: EventStore>(
    store: Arc<S>,
    redis: ConnectionManager,
    config: RunnerConfig,
    grace: Duration,
    progress: impl FnMut(Position, Option<Position>) + Send,
) -> Result<RebuildReport, ProjectionError> {
    let started = Instant::now();
    let mut con = redis.clone();
    let projection = V::PROJECTION;
    let (active, building): (Option<u32>, Option<u32>) = redis::pipe()
        .cmd("GET")
        .arg(active_version_key(projection))
        .cmd("GET")
        .arg(building_version_key(projection))
        .query_async(&mut con)
        .await?;
    let version = building.unwrap_or(active.unwrap_or(1) + 1);
    let _: () = redis::cmd("SET")
        .arg(building_version_key(projection))
        .arg(version)
        .query_async(&mut con)
        .await?;

    let target = store.last_position().await?;
    let mut runner = Runner::<V, S>::new(store, redis.clone(), version, config).await?;
    let mut progress = progress;
    runner.run(target, |p| progress(p, target)).await?;

    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(active_version_key(projection))
        .arg(version)
        .ignore()
        .cmd("DEL")
        .arg(building_version_key(projection))
        .ignore()
        .query_async(&mut con)
        .await?;
    let replayed_in = started.elapsed();
    tokio::time::sleep(grace).await;
    let removed_keys = remove_other_versions(&mut con, projection, version).await?;
    Ok(RebuildReport {
        projection,
        version,
        position: runner.checkpoint(),
        events: runner.events_applied(),
        replayed_in,
        elapsed: started.elapsed(),
        removed_keys,
    })
}

/// Deletes the keys of every version of `projection` except `keep`.
async fn remove_other_versions(
    con: &mut ConnectionManager,
    projection: &str,
    keep: u32,
) -> Result<u64, ProjectionError> {
    let prefix = format!("ordo:{projection}:v");
    let keys = scan(con, &format!("{prefix}*")).await?;
    let stale: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let version = k[prefix.len()..].split(':').next().and_then(|v| v.parse::<u32>().ok());
            version.is_some_and(|v| v != keep)
        })
        .collect();
    for chunk in stale.chunks(1_000) {
        let _: () = redis::cmd("UNLINK").arg(chunk).query_async(con).await?;
    }
    Ok(stale.len() as u64)
}

async fn scan(
    con: &mut ConnectionManager,
    pattern: &str,
) -> Result<Vec<String>, redis::RedisError> {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1_000)
            .query_async(con)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// A digest of every key in `ns` and its content, independent of write order: two namespaces
/// with equal digests hold the same read model. Used to prove incremental projection equals a
/// clean rebuild.
pub async fn digest(
    con: &mut ConnectionManager,
    ns: &Namespace,
) -> Result<String, redis::RedisError> {
    let mut keys = scan(con, &ns.pattern()).await?;
    keys.sort();
    let mut hasher = Sha256::new();
    for key in keys {
        let relative = &key[ns.prefix().len()..];
        let kind: String = redis::cmd("TYPE").arg(&key).query_async(con).await?;
        let content = match kind.as_str() {
            "hash" => {
                let mut fields: Vec<(String, String)> =
                    redis::cmd("HGETALL").arg(&key).query_async(con).await?;
                fields.sort();
                format!("{fields:?}")
            }
            "zset" => {
                let members: Vec<(String, String)> = redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async(con)
                    .await?;
                format!("{members:?}")
            }
            "set" => {
                let mut members: Vec<String> =
                    redis::cmd("SMEMBERS").arg(&key).query_async(con).await?;
                members.sort();
                format!("{members:?}")
            }
            _ => {
                let value: Option<String> = redis::cmd("GET").arg(&key).query_async(con).await?;
                format!("{value:?}")
            }
        };
        hasher.update(format!("{relative}\t{kind}\t{content}\n"));
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

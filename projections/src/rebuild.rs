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
    /// Events applied: the projection's own.
    pub events: u64,
    /// Events of the log replayed, its own and the others' it read past.
    pub events_read: u64,
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
        events_read: runner.events_read(),
        replayed_in,
        elapsed: started.elapsed(),
        removed_keys,
    })
}

/// Deletes the keys of every version of `projection` except `keep`.
///
/// Finding them is a walk over the whole keyspace (`SCAN`: Redis has no index by prefix), about
/// a second of Redis's one thread per million keys, taken from the queries and replays beside
/// it. So the walk is made only when another version has keys. Every batch a runner writes sets
/// its namespace's checkpoint in the same transaction, so a version with keys has a
/// checkpoint; versions only count up from the active one, so the checkpoints of versions 1 to
/// `keep + 1` are all there is to look at, in one `MGET`. A rebuild into a Redis that never
/// held another version of the projection (a new Redis, or one that lost its data) walks
/// nothing. The walk deletes the checkpoints last: a cleanup cut short leaves the checkpoint of
/// what it has not deleted yet, for the next cleanup to find.
async fn remove_other_versions(
    con: &mut ConnectionManager,
    projection: &'static str,
    keep: u32,
) -> Result<u64, ProjectionError> {
    let others: Vec<u32> = (1..=keep.saturating_add(1)).filter(|v| *v != keep).collect();
    let mut checkpoints = redis::cmd("MGET");
    for version in &others {
        checkpoints.arg(Namespace::new(projection, *version).checkpoint());
    }
    let found: Vec<Option<String>> = checkpoints.query_async(con).await?;
    if found.iter().all(Option::is_none) {
        return Ok(0);
    }
    let prefix = format!("ordo:{projection}:v");
    let keys = scan(con, &format!("{prefix}*")).await?;
    // Keys of other versions (`<version>:<rest>` after the prefix), their checkpoints apart.
    let (checkpoints, rest): (Vec<(String, bool)>, _) = keys
        .into_iter()
        .filter_map(|key| {
            let (version, rest) = key[prefix.len()..].split_once(':')?;
            version.parse::<u32>().ok().filter(|v| *v != keep)?;
            let checkpoint = rest == "checkpoint";
            Some((key, checkpoint))
        })
        .partition(|(_, checkpoint)| *checkpoint);
    let stale: Vec<String> = rest.into_iter().chain(checkpoints).map(|(key, _)| key).collect();
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

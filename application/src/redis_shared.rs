//! What several instances share, kept in Redis: role leases, the checkout process's checkpoint
//! and cart due times, and Idempotency-Key records. For stores with no database of their own
//! to keep it in (KurrentDB), and for PostgreSQL deployments that choose it
//! (`ordo serve --coordination redis`). ADR 0012 has the design and what it asks of Redis.
//!
//! Every operation is one Lua script, so each is atomic in Redis's one thread, and times come
//! from Redis's own clock (`TIME`), never from an instance's. The fence works as on
//! PostgreSQL: a lease's epoch goes up by one on every takeover, and a checkpoint is saved only
//! by a script that finds the saver's epoch still on the lease.

// The same shapes the PostgreSQL home answers with, so callers handle both alike.
use ordo_eventstore::postgres::shared::{LeaseRow, RequestClaim};
use ordo_eventstore::StoreError;
use redis::aio::ConnectionManager;
use redis::Script;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

/// Prefix of every key this module writes.
const PREFIX: &str = "ordo:shared";

/// `KEYS[1]` lease hash, `KEYS[2]` set of roles; `ARGV` holder, ttl ms. The new epoch, or nil
/// while another holder's lease is live.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local t = redis.call('TIME')
        local now = t[1] * 1000 + math.floor(t[2] / 1000)
        local lease = redis.call('HMGET', KEYS[1], 'epoch', 'expires')
        if lease[2] and tonumber(lease[2]) > now then return false end
        local epoch = (tonumber(lease[1]) or 0) + 1
        redis.call('HSET', KEYS[1], 'holder', ARGV[1], 'epoch', epoch,
            'acquired', now, 'expires', now + tonumber(ARGV[2]))
        redis.call('SADD', KEYS[2], KEYS[1])
        return epoch
        ",
    )
});

/// `KEYS[1]` lease hash; `ARGV` holder, epoch, ttl ms (0 releases). 1 if still the holder's.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local lease = redis.call('HMGET', KEYS[1], 'holder', 'epoch')
        if lease[1] ~= ARGV[1] or lease[2] ~= ARGV[2] then return 0 end
        local t = redis.call('TIME')
        local now = t[1] * 1000 + math.floor(t[2] / 1000)
        redis.call('HSET', KEYS[1], 'expires', now + tonumber(ARGV[3]))
        return 1
        ",
    )
});

/// `KEYS[1]` set of roles. Every lease as a flat list, then Redis's time.
static LEASES: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local out = {}
        for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
            local l = redis.call('HMGET', key, 'holder', 'epoch', 'acquired', 'expires')
            if l[1] then
                table.insert(out, key); table.insert(out, l[1]); table.insert(out, l[2])
                table.insert(out, l[3]); table.insert(out, l[4])
            end
        end
        local t = redis.call('TIME')
        table.insert(out, tostring(t[1] * 1000 + math.floor(t[2] / 1000)))
        return out
        ",
    )
});

/// `KEYS` lease hash (or any key when unfenced), checkpoints hash, cart due hash; `ARGV` epoch
/// (empty: not fenced), process, position, then cart id and due ms (empty: no longer due)
/// pairs. Refuses with `FENCED <epoch on the lease>` when the epoch moved on.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if ARGV[1] ~= '' then
            local epoch = redis.call('HGET', KEYS[1], 'epoch')
            if epoch ~= ARGV[1] then
                return redis.error_reply('FENCED ' .. tostring(epoch))
            end
        end
        redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
        for i = 4, #ARGV, 2 do
            if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[3], ARGV[i])
            else redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1]) end
        end
        return 1
        ",
    )
});

/// `KEYS[1]` request hash; `ARGV` owner, claim ms, fingerprint, retention ms.
/// `{'claimed'}`, `{'busy'}` or `{'done', fingerprint, response}`.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local r = redis.call('HMGET', KEYS[1], 'response', 'fingerprint', 'claimed_until')
        if r[1] then return {'done', r[2], r[1]} end
        local t = redis.call('TIME')
        local now = t[1] * 1000 + math.floor(t[2] / 1000)
        if r[3] and tonumber(r[3]) >= now then return {'busy'} end
        redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'claimed_until', now + tonumber(ARGV[2]),
            'fingerprint', ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[4])
        return {'claimed'}
        ",
    )
});

/// `KEYS[1]` request hash; `ARGV` owner, response (empty: abandon), retention ms.
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local r = redis.call('HMGET', KEYS[1], 'owner', 'response')
        if r[1] ~= ARGV[1] or r[2] then return 0 end
        if ARGV[2] == '' then redis.call('DEL', KEYS[1]); return 1 end
        redis.call('HSET', KEYS[1], 'response', ARGV[2])
        redis.call('HDEL', KEYS[1], 'claimed_until')
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return 1
        ",
    )
});

/// The shared bookkeeping in one Redis (the primary the read models live in).
#[derive(Clone)]
pub struct RedisShared {
    redis: ConnectionManager,
}

fn failed(e: redis::RedisError) -> StoreError {
    StoreError::Storage(format!("redis: {e}"))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn lease_key(role: &str) -> String {
    format!("{PREFIX}:lease:{role}")
}

fn request_key(record: &[u8]) -> String {
    let hex: String = record.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}:request:{hex}")
}

const ROLES: &str = "ordo:shared:roles";
const CHECKPOINTS: &str = "ordo:shared:checkpoints";
const CART_DUE: &str = "ordo:shared:cart-due";

impl RedisShared {
    /// Over `redis`, which must keep what it is told (AOF on; see the ADR).
    pub fn new(redis: ConnectionManager) -> Self {
        Self { redis }
    }

    /// Takes `role` for `holder` if nobody holds it or its lease has lapsed; the new epoch.
    pub async fn try_acquire(
        &self,
        role: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, StoreError> {
        let mut redis = self.redis.clone();
        ACQUIRE
            .key(lease_key(role))
            .key(ROLES)
            .arg(holder)
            .arg(ms(ttl))
            .invoke_async(&mut redis)
            .await
            .map_err(failed)
    }

    /// Extends `holder`'s lease on `role` at `epoch` by `ttl`; false if it is no longer theirs.
    pub async fn renew(
        &self,
        role: &str,
        holder: &str,
        epoch: i64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut redis = self.redis.clone();
        let renewed: i64 = RENEW
            .key(lease_key(role))
            .arg(holder)
            .arg(epoch)
            .arg(ms(ttl))
            .invoke_async(&mut redis)
            .await
            .map_err(failed)?;
        Ok(renewed == 1)
    }

    /// Gives `role` up at once, so the next holder need not wait for the lease to lapse.
    pub async fn release(&self, role: &str, holder: &str, epoch: i64) -> Result<(), StoreError> {
        self.renew(role, holder, epoch, Duration::ZERO).await.map(|_| ())
    }

    /// Every lease, with Redis's clock.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let mut redis = self.redis.clone();
        let flat: Vec<String> = LEASES.key(ROLES).invoke_async(&mut redis).await.map_err(failed)?;
        let now_ms = flat.last().and_then(|n| n.parse().ok()).unwrap_or(0);
        let prefix = lease_key("");
        let mut leases: Vec<LeaseRow> = flat[..flat.len().saturating_sub(1)]
            .chunks_exact(5)
            .map(|l| LeaseRow {
                role: l[0].strip_prefix(&prefix).unwrap_or(&l[0]).to_owned(),
                holder: l[1].clone(),
                epoch: l[2].parse().unwrap_or(0),
                acquired_at_ms: l[3].parse().unwrap_or(0),
                expires_at_ms: l[4].parse().unwrap_or(0),
                now_ms,
            })
            .collect();
        leases.sort_by(|a, b| a.role.cmp(&b.role));
        Ok(leases)
    }

    /// The last position `process` handled.
    pub async fn process_checkpoint(&self, process: &str) -> Result<Option<u64>, StoreError> {
        let mut redis = self.redis.clone();
        redis::cmd("HGET")
            .arg(CHECKPOINTS)
            .arg(process)
            .query_async(&mut redis)
            .await
            .map_err(failed)
    }

    /// Every open cart's due time (Unix ms).
    pub async fn carts_due(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let mut redis = self.redis.clone();
        redis::cmd("HGETALL").arg(CART_DUE).query_async(&mut redis).await.map_err(failed)
    }

    /// Saves `process`'s checkpoint and cart due changes in one script, which first checks
    /// that `fence` (role, epoch) is still the lease's; otherwise [`StoreError::Fenced`].
    pub async fn save_process_state(
        &self,
        process: &str,
        fence: Option<(&str, i64)>,
        position: u64,
        due: &HashMap<String, Option<i64>>,
    ) -> Result<(), StoreError> {
        let mut invocation = SAVE.prepare_invoke();
        invocation
            .key(fence.map_or_else(|| lease_key(""), |(role, _)| lease_key(role)))
            .key(CHECKPOINTS)
            .key(CART_DUE)
            .arg(fence.map_or_else(String::new, |(_, epoch)| epoch.to_string()))
            .arg(process)
            .arg(position);
        for (cart, at) in due {
            invocation.arg(cart).arg(at.map_or_else(String::new, |t| t.to_string()));
        }
        let mut redis = self.redis.clone();
        match invocation.invoke_async::<i64>(&mut redis).await {
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("FENCED") => {
                let (role, epoch) = fence.unwrap_or(("", 0));
                Err(StoreError::Fenced { role: role.to_owned(), epoch })
            }
            Err(e) => Err(failed(e)),
        }
    }

    /// Claims an Idempotency-Key record for `owner` for `hold`, or finds it running or done.
    /// A record lives `retention` from its claim.
    pub async fn claim_request(
        &self,
        record: &[u8],
        fingerprint: &[u8],
        owner: &str,
        hold: Duration,
        retention: Duration,
    ) -> Result<RequestClaim, StoreError> {
        let mut redis = self.redis.clone();
        let reply: Vec<Vec<u8>> = CLAIM
            .key(request_key(record))
            .arg(owner)
            .arg(ms(hold))
            .arg(fingerprint)
            .arg(ms(retention))
            .invoke_async(&mut redis)
            .await
            .map_err(failed)?;
        Ok(match reply.as_slice() {
            [kind] if kind == b"claimed" => RequestClaim::Claimed,
            [kind, fingerprint, response] if kind == b"done" => {
                RequestClaim::Done { fingerprint: fingerprint.clone(), response: response.clone() }
            }
            _ => RequestClaim::InProgress,
        })
    }

    /// Stores the response of the request `owner` claimed, kept `retention` from now.
    pub async fn finish_request(
        &self,
        record: &[u8],
        owner: &str,
        response: &[u8],
        retention: Duration,
    ) -> Result<(), StoreError> {
        let mut redis = self.redis.clone();
        let _: i64 = FINISH
            .key(request_key(record))
            .arg(owner)
            .arg(response)
            .arg(ms(retention))
            .invoke_async(&mut redis)
            .await
            .map_err(failed)?;
        Ok(())
    }

    /// Drops `owner`'s claim on a request that stored nothing (refused, failed, cancelled).
    pub async fn abandon_request(&self, record: &[u8], owner: &str) -> Result<(), StoreError> {
        let mut redis = self.redis.clone();
        let _: i64 = FINISH
            .key(request_key(record))
            .arg(owner)
            .arg("")
            .arg(0)
            .invoke_async(&mut redis)
            .await
            .map_err(failed)?;
        Ok(())
    }
}

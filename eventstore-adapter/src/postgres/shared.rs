//! What several Ordo servers on one database share besides the log (ADR 0012): leases on the
//! roles that must run once, the checkout process's checkpoint and cart due times, and
//! `Idempotency-Key` records.
//!
//! Every time here is the database's clock (`now()`), never a server's, so servers whose clocks
//! disagree still agree on who holds a lease. A lease's `epoch` grows by one at every takeover;
//! it is the fencing token: the process state is saved only in a transaction that finds the
//! saver's epoch still on the lease row (`FOR SHARE`, which a takeover's `UPDATE` waits for), so
//! a holder that was paused past its lease and resumes cannot write as that role again.

use super::PostgresStore;
use crate::error::StoreError;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A lease row: who holds a role, since when, until when (Unix ms, the database's clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    /// The role.
    pub role: String,
    /// The instance holding (or last holding) it.
    pub holder: String,
    /// Takeovers so far; the fencing token.
    pub epoch: i64,
    /// When this holder took it.
    pub acquired_at_ms: i64,
    /// When it lapses unless renewed.
    pub expires_at_ms: i64,
    /// The database's clock when read, to compare `expires_at_ms` with.
    pub now_ms: i64,
}

/// What claiming an `Idempotency-Key` record found.
#[derive(Debug, PartialEq, Eq)]
pub enum RequestClaim {
    /// Nobody had it (or its last claimant died): the caller runs the request.
    Claimed,
    /// Another request with this key is running.
    InProgress,
    /// It ran to completion: its fingerprint and stored response.
    Done {
        /// The first request's fingerprint.
        fingerprint: Vec<u8>,
        /// The stored response, as the caller encoded it.
        response: Vec<u8>,
    },
}

const MS: &str = "(extract(epoch from {}) * 1000)::bigint";

fn ms(column: &str) -> String {
    MS.replace("{}", column)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// Takes `role` for `holder` if nobody holds it or its lease has lapsed; the new epoch.
    pub async fn try_acquire(
        &self,
        role: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<i64>, StoreError> {
        let schema = self.schema();
        let row = self
            .client()
            .await?
            .query_opt(
                &format!(
                    "INSERT INTO {schema}.leases AS l (role, holder, epoch, acquired_at, expires_at)
                     VALUES ($1, $2, 1, now(), now() + $3 * interval '1 millisecond')
                     ON CONFLICT (role) DO UPDATE
                        SET holder = EXCLUDED.holder, epoch = l.epoch + 1,
                            acquired_at = now(), expires_at = EXCLUDED.expires_at
                        WHERE l.expires_at < now()
                     RETURNING epoch"
                ),
                &[&role, &holder, &(millis(ttl) as f64)],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Extends `holder`'s lease on `role` at `epoch`; `false` if it was taken over.
    pub async fn renew(
        &self,
        role: &str,
        holder: &str,
        epoch: i64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let schema = self.schema();
        let renewed = self
            .client()
            .await?
            .execute(
                &format!(
                    "UPDATE {schema}.leases SET expires_at = now() + $4 * interval '1 millisecond'
                     WHERE role = $1 AND holder = $2 AND epoch = $3"
                ),
                &[&role, &holder, &epoch, &(millis(ttl) as f64)],
            )
            .await?;
        Ok(renewed == 1)
    }

    /// Gives `role` up at once (on shutdown or stepping down), so the next holder need not
    /// wait for the lease to lapse.
    pub async fn release(&self, role: &str, holder: &str, epoch: i64) -> Result<(), StoreError> {
        let schema = self.schema();
        self.client()
            .await?
            .execute(
                &format!(
                    "UPDATE {schema}.leases SET expires_at = now()
                     WHERE role = $1 AND holder = $2 AND epoch = $3"
                ),
                &[&role, &holder, &epoch],
            )
            .await?;
        Ok(())
    }

    /// Every lease row, by role.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let schema = self.schema();
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT role, holder, epoch, {}, {}, {} FROM {schema}.leases ORDER BY role",
                    ms("acquired_at"),
                    ms("expires_at"),
                    ms("now()")
                ),
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| LeaseRow {
                role: r.get(0),
                holder: r.get(1),
                epoch: r.get(2),
                acquired_at_ms: r.get(3),
                expires_at_ms: r.get(4),
                now_ms: r.get(5),
            })
            .collect())
    }

    /// The last position process `name` handled.
    pub async fn process_checkpoint(&self, name: &str) -> Result<Option<u64>, StoreError> {
        let schema = self.schema();
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT position FROM {schema}.checkpoints WHERE name = $1"),
                &[&name],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    /// Every open cart's due time (Unix ms).
    pub async fn carts_due(&self) -> Result<BTreeMap<String, i64>, StoreError> {
        let schema = self.schema();
        let rows = self
            .client()
            .await?
            .query(&format!("SELECT cart, due_ms FROM {schema}.cart_due"), &[])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Saves process `name`'s checkpoint and the cart due changes (`None`: no longer due) in
    /// one transaction, only while the lease `fence` (role, epoch) is still the saver's:
    /// [`StoreError::Fenced`] otherwise. (`None`: unfenced, for a single server or a tool.)
    pub async fn save_process_state(
        &self,
        name: &str,
        fence: Option<(&str, i64)>,
        position: u64,
        due: &HashMap<String, Option<i64>>,
    ) -> Result<(), StoreError> {
        let schema = self.schema();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if let Some((role, epoch)) = fence {
            let holds = tx
                .query_opt(
                    &format!(
                        "SELECT 1 FROM {schema}.leases WHERE role = $1 AND epoch = $2 FOR SHARE"
                    ),
                    &[&role, &epoch],
                )
                .await?;
            if holds.is_none() {
                return Err(StoreError::Fenced { role: role.to_owned(), epoch });
            }
        }
        tx.execute(
            &format!(
                "INSERT INTO {schema}.checkpoints (name, position) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position"
            ),
            &[&name, &(position as i64)],
        )
        .await?;
        let (mut due_carts, mut due_at, mut gone) = (vec![], vec![], vec![]);
        for (cart, at) in due {
            match at {
                Some(at) => {
                    due_carts.push(cart.as_str());
                    due_at.push(*at);
                }
                None => gone.push(cart.as_str()),
            }
        }
        if !due_carts.is_empty() {
            tx.execute(
                &format!(
                    "INSERT INTO {schema}.cart_due (cart, due_ms)
                     SELECT * FROM unnest($1::text[], $2::bigint[])
                     ON CONFLICT (cart) DO UPDATE SET due_ms = EXCLUDED.due_ms"
                ),
                &[&due_carts, &due_at],
            )
            .await?;
        }
        if !gone.is_empty() {
            tx.execute(&format!("DELETE FROM {schema}.cart_due WHERE cart = ANY($1)"), &[&gone])
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims the `Idempotency-Key` record for `owner` for up to `hold` (after which a claimant
    /// that died is assumed gone), or reports who has it.
    pub async fn claim_request(
        &self,
        record: &[u8],
        fingerprint: &[u8],
        owner: &str,
        hold: Duration,
        now_ms: i64,
    ) -> Result<RequestClaim, StoreError> {
        let schema = self.schema();
        let client = self.client().await?;
        let until = now_ms.saturating_add(millis(hold));
        let claimed = client
            .execute(
                &format!(
                    "INSERT INTO {schema}.requests AS r
                        (record, fingerprint, created_ms, owner, claimed_until)
                     VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (record) DO UPDATE
                        SET fingerprint = EXCLUDED.fingerprint, created_ms = EXCLUDED.created_ms,
                            owner = EXCLUDED.owner, claimed_until = EXCLUDED.claimed_until
                        WHERE r.response IS NULL AND r.claimed_until < $3"
                ),
                &[&record, &fingerprint, &now_ms, &owner, &until],
            )
            .await?;
        if claimed == 1 {
            return Ok(RequestClaim::Claimed);
        }
        let row = client
            .query_opt(
                &format!("SELECT fingerprint, response FROM {schema}.requests WHERE record = $1"),
                &[&record],
            )
            .await?;
        Ok(match row {
            Some(row) => match row.get::<_, Option<Vec<u8>>>(1) {
                Some(response) => RequestClaim::Done { fingerprint: row.get(0), response },
                None => RequestClaim::InProgress,
            },
            // Abandoned between the two statements: the caller may claim it again.
            None => RequestClaim::InProgress,
        })
    }

    /// Stores the response of `owner`'s claimed request.
    pub async fn finish_request(
        &self,
        record: &[u8],
        owner: &str,
        response: &[u8],
    ) -> Result<(), StoreError> {
        let schema = self.schema();
        self.client()
            .await?
            .execute(
                &format!(
                    "UPDATE {schema}.requests SET response = $3, claimed_until = NULL
                     WHERE record = $1 AND owner = $2 AND response IS NULL"
                ),
                &[&record, &owner, &response],
            )
            .await?;
        Ok(())
    }

    /// Drops `owner`'s claim on a request that stored nothing (refused, failed, cancelled).
    pub async fn abandon_request(&self, record: &[u8], owner: &str) -> Result<(), StoreError> {
        let schema = self.schema();
        self.client()
            .await?
            .execute(
                &format!(
                    "DELETE FROM {schema}.requests
                     WHERE record = $1 AND owner = $2 AND response IS NULL"
                ),
                &[&record, &owner],
            )
            .await?;
        Ok(())
    }

    /// Deletes records created before `cutoff_ms`; how many.
    pub async fn purge_requests(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let schema = self.schema();
        Ok(self
            .client()
            .await?
            .execute(&format!("DELETE FROM {schema}.requests WHERE created_ms < $1"), &[&cutoff_ms])
            .await?)
    }
}

//! The `target_owners` table: which replica ticks a target when several share the store.
//!
//! A claim is a compare-and-swap on the target's epoch, run by the writer: it succeeds when
//! the target is unowned, released, owned by the claimant itself (a restarted replica) or by
//! a replica the claimant does not see live, and then bumps the epoch. Two replicas racing
//! for one target both read the same epoch, and only one update finds it unchanged. A write
//! carrying a [`Fence`] is applied only while the row still names its owner at its epoch.

use crate::backend::{Conn, on_db};
use crate::error::{Result, StoreError, query_err};
use crate::rows::{Fence, TargetKey};
use crate::store::Store;
use crate::writer::Write;

/// The result of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The claimant owns the target now, at this epoch.
    Owned(Fence),
    /// A live replica holds it.
    Held,
}

/// Claims target `target` for `me` (see the module docs); returns the new epoch, or 0 when
/// a live replica holds it or won a race for it.
pub(crate) async fn claim(conn: &mut Conn, target: i64, me: &str, live: &[String], at: i64) -> Result<i64> {
    let current: Option<(Option<String>, i64)> = on_db!(&mut *conn, c => sqlx::query_as(
        "SELECT owner, epoch FROM target_owners WHERE target_id = $1",
    )
    .bind(target)
    .fetch_optional(c)
    .await)
    .map_err(query_err("read target owner"))?;
    let changed = match current {
        None => on_db!(conn, c => sqlx::query(
            "INSERT INTO target_owners (target_id, owner, epoch, changed_at) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (target_id) DO NOTHING",
        )
        .bind(target)
        .bind(me)
        .bind(at)
        .execute(c)
        .await
        .map(|done| done.rows_affected()))
        .map_err(query_err("claim target"))?
        .min(1) as i64,
        Some((Some(owner), _)) if owner != me && live.contains(&owner) => 0,
        Some((_, epoch)) => {
            let done = on_db!(conn, c => sqlx::query(
                "UPDATE target_owners SET owner = $2, epoch = epoch + 1, changed_at = $3 \
                 WHERE target_id = $1 AND epoch = $4",
            )
            .bind(target)
            .bind(me)
            .bind(at)
            .bind(epoch)
            .execute(c)
            .await
            .map(|done| done.rows_affected()))
            .map_err(query_err("claim target"))?;
            if done == 1 { epoch + 1 } else { 0 }
        }
    };
    Ok(changed)
}

/// Gives a target up, if `fence` still holds it; returns rows changed.
pub(crate) async fn release(conn: &mut Conn, target: i64, fence: &Fence, at: i64) -> Result<i64> {
    let done = on_db!(conn, c => sqlx::query(
        "UPDATE target_owners SET owner = NULL, changed_at = $4 \
         WHERE target_id = $1 AND owner = $2 AND epoch = $3",
    )
    .bind(target)
    .bind(&fence.owner)
    .bind(fence.epoch)
    .bind(at)
    .execute(c)
    .await
    .map(|done| done.rows_affected()))
    .map_err(query_err("release target"))?;
    Ok(done as i64)
}

/// Fails with [`StoreError::Fenced`] unless `fence` still holds target `target`.
pub(crate) async fn check(conn: &mut Conn, target: i64, key: &TargetKey, fence: &Fence) -> Result<()> {
    let current: Option<(Option<String>, i64)> = on_db!(conn, c => sqlx::query_as(
        "SELECT owner, epoch FROM target_owners WHERE target_id = $1",
    )
    .bind(target)
    .fetch_optional(c)
    .await)
    .map_err(query_err("read target owner"))?;
    match current {
        Some((Some(owner), epoch)) if owner == fence.owner && epoch == fence.epoch => Ok(()),
        _ => Err(StoreError::Fenced { key: key.to_string(), owner: fence.owner.clone(), epoch: fence.epoch }),
    }
}

impl Store {
    /// Claims `key` for the replica `me`, which sees `live` as the live replicas; waits for
    /// the commit. [`Claim::Owned`] carries the fence its writes must carry from now on.
    pub async fn claim_target(&self, key: &TargetKey, me: &str, live: &[String], at: i64) -> Result<Claim> {
        let op = Write::Claim { key: key.clone(), me: me.to_owned(), live: live.to_vec(), at };
        match self.write(op).await? {
            0 => Ok(Claim::Held),
            epoch => Ok(Claim::Owned(Fence { owner: me.to_owned(), epoch })),
        }
    }

    /// Gives `key` up, if `fence` still holds it (so that the next owner need not wait for
    /// this replica's Lease to expire); returns whether it did.
    pub async fn release_target(&self, key: &TargetKey, fence: &Fence, at: i64) -> Result<bool> {
        let op = Write::Release { key: key.clone(), fence: fence.clone(), at };
        Ok(self.write(op).await? > 0)
    }

    /// How many targets each replica has claimed (released ones are not counted).
    pub async fn owner_counts(&self) -> Result<Vec<(String, i64)>> {
        on_db!(self.pool(), pool => sqlx::query_as(
            "SELECT owner, COUNT(*) FROM target_owners WHERE owner IS NOT NULL GROUP BY owner ORDER BY owner",
        )
        .fetch_all(pool)
        .await)
        .map_err(query_err("count targets by owner"))
    }

    /// Every owned target's owner (released ones are not listed): each replica's share.
    pub async fn target_owners(&self) -> Result<Vec<(TargetKey, Fence)>> {
        let rows: Vec<(String, String, String, String, i64)> = on_db!(self.pool(), pool => sqlx::query_as(
            "SELECT t.namespace, t.kind, t.name, o.owner, o.epoch FROM target_owners o \
             JOIN targets t ON t.id = o.target_id WHERE o.owner IS NOT NULL",
        )
        .fetch_all(pool)
        .await)
        .map_err(query_err("read target owners"))?;
        rows.into_iter()
            .map(|(namespace, kind, name, owner, epoch)| {
                Ok((TargetKey { namespace, kind: crate::codec::workload_kind(kind)?, name }, Fence { owner, epoch }))
            })
            .collect()
    }
}

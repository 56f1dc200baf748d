//! `GET /api/v1/hub`: what this hub is and how its targets are doing.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::CanRead;
use super::error::ApiError;

/// Facts about this hub process, fixed at start.
#[derive(Debug, Clone)]
pub struct HubInfo {
    /// This process's identity in the leader Lease.
    pub identity: String,
    /// When it started, unix milliseconds.
    pub started_at: i64,
}

/// The database writer's health.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    /// False while the writer's last attempt failed (a full disk, I/O errors) and nothing has
    /// been committed since; decisions and policy state are not saved meanwhile.
    pub writable: bool,
    /// Why the last failed attempt failed.
    pub last_error: Option<String>,
    /// Writes lost because their batch failed after retries, since start.
    pub lost_writes: u64,
}

/// The hub's status.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HubStatus {
    /// scalehub's version.
    pub version: String,
    /// Whether this hub may act: it holds the leader Lease (a standby decides nothing), or,
    /// sharded, its membership Lease is fresh.
    pub leader: bool,
    /// Identity in the leader Lease.
    pub identity: String,
    /// Managed targets by state.
    pub targets: BTreeMap<String, u64>,
    /// Whether the database can be written.
    pub store: StoreStatus,
    /// When this process started, unix milliseconds.
    pub started_at: i64,
    /// Whether reads need a token.
    pub reads_protected: bool,
    /// Whether the hub accepts writes at all (a token file is configured).
    pub writes_enabled: bool,
    /// The config in force: when it was loaded, warnings, a refused reload.
    pub config: crate::reload::ConfigStatus,
    /// When replicas shard the targets: the live members and each one's share; absent when
    /// one leader ticks every target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharding: Option<Sharding>,
}

/// The members of a sharded hub.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sharding {
    /// Whether this replica's membership Lease is fresh (it ticks nothing while it is not).
    pub live: bool,
    /// Every member that is live, or still owns targets in the store, by identity.
    pub members: Vec<Member>,
}

/// One member of a sharded hub.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Its identity.
    pub identity: String,
    /// Whether this replica sees its Lease live.
    pub live: bool,
    /// Targets it has claimed in the store (its share).
    pub targets: u64,
    /// Where its API answers the other members (`IP:port`), as its Lease announces it;
    /// absent when it announces none (evaluations of its targets cannot be forwarded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// This hub's version, role and target counts.
#[utoipa::path(get, path = "/api/v1/hub", tag = "hub", responses((status = 200, body = HubStatus)))]
pub async fn hub(_: CanRead, State(state): State<ApiState>) -> Result<Json<HubStatus>, ApiError> {
    let targets = state.ctx.store.counts_by_state().await?;
    let stats = state.ctx.store.stats();
    let store = StoreStatus { writable: !stats.failing, last_error: stats.last_error, lost_writes: stats.failed };
    let sharding = match &state.ctx.shard {
        None => None,
        Some(shard) => {
            let live = shard.live();
            let mut shares: BTreeMap<String, u64> = live.iter().map(|m| (m.clone(), 0)).collect();
            for (owner, n) in state.ctx.store.owner_counts().await? {
                shares.insert(owner, n.max(0) as u64);
            }
            let addresses = shard.members.borrow().addresses.clone();
            let members = shares
                .into_iter()
                .map(|(identity, targets)| {
                    let address = match identity == shard.me {
                        true => shard.address,
                        false => addresses.get(&identity).copied(),
                    };
                    let address = address.map(|a| a.to_string());
                    Member { live: live.contains(&identity), identity, targets, address }
                })
                .collect();
            Some(Sharding { live: shard.members.borrow().me_live, members })
        }
    };
    Ok(Json(HubStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        leader: *state.ctx.leader.borrow(),
        identity: state.info.identity.clone(),
        targets,
        store,
        started_at: state.info.started_at,
        reads_protected: state.auth.reads_protected(),
        writes_enabled: state.auth.writes_enabled(),
        config: state.ctx.config_status.read().map(|s| s.clone()).unwrap_or_default(),
        sharding,
    }))
}

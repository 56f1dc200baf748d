//! Plain row types: what the hub writes and what the API reads back.
//!
//! All times are unix milliseconds. The decisions' and targets' JSON columns are [`Json`]
//! documents, held as their text (written once, read by pages that pass them on); the policy
//! state is a `serde_json::Value`. Either way the store never depends on the hub's domain
//! types. Serde names are camelCase to match the REST API, so rows can be returned as they are.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::json::Json;

pub use scalehub_core::target::{Kind, TargetKey};

/// One target as the hub last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRow {
    /// Which workload this is.
    #[serde(flatten)]
    pub key: TargetKey,
    /// Kubernetes uid; a new uid under the same key means the workload was recreated.
    pub uid: Option<String>,
    /// Hub-defined state, e.g. `active`, `shadow`, `invalid`, `error`, `removed`.
    pub state: String,
    /// The parsed annotation spec (whatever JSON the hub chooses).
    pub spec: Json,
    /// Why the target is invalid or failing, shown to users.
    pub error: Option<String>,
    /// Replicas the workload has now.
    pub current_replicas: Option<i32>,
    /// Replicas the last decision asked for.
    pub desired_replicas: Option<i32>,
    /// First time the hub saw the workload; kept from the first insert, ignored on update.
    pub first_seen: i64,
    /// Last time the watch reported the workload.
    pub last_seen: i64,
    /// When the workload opted out or was deleted; `None` while it is managed.
    pub removed_at: Option<i64>,
    /// When this row was last written.
    pub updated_at: i64,
}

/// One decision: everything a tick computed and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRow {
    /// Store-assigned id, increasing with insertion; ignored when recording.
    pub id: i64,
    /// The target decided for.
    #[serde(flatten)]
    pub key: TargetKey,
    /// When the decision was made.
    pub time: i64,
    /// `scaler`, `api`, `api_dry_run`, `override`, ...
    pub run_type: String,
    /// Metric values gathered (the CPA `metrics` array or built-in readings).
    pub metrics: Json,
    /// What the evaluator asked for before any policy was applied.
    pub raw_evaluation: Option<i64>,
    /// The full evaluation document.
    pub evaluation: Json,
    /// The reason chain: each constraint applied, in order.
    pub reasons: Json,
    /// Replicas after policy; `None` when the tick failed before deciding.
    pub final_replicas: Option<i32>,
    /// Replicas the workload had at the tick.
    pub current_replicas: Option<i32>,
    /// Whether a scale call was made.
    pub scaled: bool,
    /// Result of the scale call, if one was made.
    pub scale_result: Option<String>,
    /// Why the tick failed, if it did.
    pub error: Option<String>,
    /// Hook outcomes: status, duration, start of stderr.
    pub hooks: Json,
    /// Summary: `scaled`, `unchanged`, `held`, `error`, `shadow`, `disabled`, ...
    pub outcome: String,
}

/// The persisted policy state of one target (stabilisation and rate windows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStateRow {
    /// The target the state belongs to.
    #[serde(flatten)]
    pub key: TargetKey,
    /// Opaque state document owned by the policy code.
    pub state: Value,
    /// When the state was written.
    pub updated_at: i64,
    /// When targets are sharded: the claim the writer holds. The state (and the tick or
    /// decision it comes with) is refused with [`crate::StoreError::Fenced`] unless the
    /// target is still owned by `fence.owner` at `fence.epoch`.
    #[serde(skip)]
    pub fence: Option<Fence>,
}

/// A replica's claim on a target: its identity and the epoch its claim got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The replica's identity.
    pub owner: String,
    /// The epoch of its claim.
    pub epoch: i64,
}

/// What an override does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideKind {
    /// Hold the target at exactly `replicas`.
    Pin,
    /// Replace the target's min/max with `min_replicas`/`max_replicas`.
    Bounds,
    /// Stop scaling in `pause_direction`.
    Pause,
}

pub use scalehub_core::policy::PauseDirection;

/// An operator override and, once ended, its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverrideRow {
    /// Store-assigned id; ignored when setting.
    pub id: i64,
    /// The overridden target.
    #[serde(flatten)]
    pub key: TargetKey,
    /// What the override does; decides which of the fields below are set.
    pub kind: OverrideKind,
    /// Pinned replicas (`Pin`).
    pub replicas: Option<i32>,
    /// Lower bound (`Bounds`).
    pub min_replicas: Option<i32>,
    /// Upper bound (`Bounds`).
    pub max_replicas: Option<i32>,
    /// Direction stopped (`Pause`).
    pub pause_direction: Option<PauseDirection>,
    /// Expiry; `None` lasts until cleared.
    pub until: Option<i64>,
    /// Free text from the operator.
    pub reason: String,
    /// Who set it (token subject or user name).
    pub author: String,
    /// When it was set.
    pub created_at: i64,
    /// When it was cleared or replaced; `None` while open (it may still have expired).
    pub ended_at: Option<i64>,
    /// Who or what ended it: a user, `replaced`, `expired`.
    pub ended_by: Option<String>,
}

impl OverrideRow {
    /// Whether the override applies at `now`: not ended and not expired.
    pub fn is_active(&self, now: i64) -> bool {
        self.ended_at.is_none() && self.until.is_none_or(|until| until > now)
    }
}

/// Health of the writer task, for `/metrics` and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriterStats {
    /// Writes waiting in the channel right now.
    pub queued: u64,
    /// Transactions committed since open.
    pub batches: u64,
    /// Writes committed since open.
    pub committed: u64,
    /// Writes rejected one by one (bad input); the rest of their batch committed.
    pub rejected: u64,
    /// Writes lost because their whole batch could not be committed after retries.
    pub failed: u64,
    /// Size of the last committed batch.
    pub last_batch: u64,
    /// Transaction attempts that failed, retries included (a full disk, I/O errors).
    pub failed_attempts: u64,
    /// Whether the writer cannot write right now: its last attempt failed and nothing has
    /// been committed since.
    pub failing: bool,
    /// Why the last failed attempt failed.
    pub last_error: Option<String>,
}

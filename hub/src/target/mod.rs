//! Targets: from a watched workload to its recorded decision, in data-flow order.
//!
//! - [`registry`]: turns workload watch events into one loop per opted-in workload;
//! - [`task`]: the per-target loop, ticking at the target's interval, answering the API's
//!   on-demand runs between ticks;
//! - [`tick`]: one tick — the stages, then the policy, then the scale call;
//! - [`stages`]: the hook stages in the CPA's order (metrics → evaluate, preScale/postScale),
//!   or the built-in calculation, each returning a typed result;
//! - [`record`]: what a tick leaves behind: the target row, a point of the tick series, a
//!   decision row when something changed, the policy state — and an event on the bus.
//!
//! The loops share the hub-wide [`Context`](crate::hub::Context).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use scalehub_core::spec::TargetSpec;

use crate::hub::Context;
use crate::workload::{TargetKey, Workload};

pub mod record;
pub mod registry;
pub mod stages;
pub mod task;
pub mod tick;

pub use registry::Registry;
pub use tick::TickResult;

/// A request to a target's loop, answered between its ticks so it never races them.
#[derive(Debug)]
pub enum Command {
    /// Panic inside the loop, as a bug in a tick would (tests of the supervisor).
    #[cfg(test)]
    Panic,
    /// Run the stages now with this run type (`api` scales like a tick; `api_dry_run` never
    /// scales and leaves the stabilisation state alone) and answer with the result.
    Run {
        /// `api` or `api_dry_run`.
        run_type: scalehub_hooks::RunType,
        /// Where the result goes.
        reply: oneshot::Sender<Result<TickResult, RunError>>,
    },
    /// Run only the metric stage (the CPA's `GET /metrics`); nothing is decided or recorded.
    Metrics {
        /// `api` or `api_dry_run`, as the hooks see it.
        run_type: scalehub_hooks::RunType,
        /// The metrics, or why the stage failed.
        reply: oneshot::Sender<Result<Result<Vec<scalehub_hooks::MetricValue>, String>, RunError>>,
    },
}

/// How the API reaches a running loop.
#[derive(Clone, Debug)]
pub struct LoopHandle {
    /// Commands to the loop.
    /// Boxed: a channel allocates 32 slots at once, and an idle target should not pay for
    /// 32 unboxed commands.
    pub commands: mpsc::Sender<Box<Command>>,
    /// The loop's latest input (workload and parsed spec).
    pub input: watch::Receiver<Arc<TargetInput>>,
}

/// Why an on-demand run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No loop runs for this target (not opted in, or unknown).
    #[error("no such target")]
    NotFound,
    /// The target's annotations are invalid.
    #[error("invalid annotations: {0}")]
    Invalid(String),
    /// An HPA owns the workload.
    #[error("{0}")]
    Conflict(String),
    /// Sharded: another replica owns the target (or this one is not live).
    #[error("another hub replica owns this target")]
    NotOwner,
    /// This hub is a standby; the leader answers.
    #[error("this hub is not the leader")]
    NotLeader,
    /// The loop stopped while the request waited.
    #[error("the target's loop stopped")]
    Stopped,
}

/// The latest view of one target: its workload and its parsed spec.
#[derive(Debug)]
pub struct TargetInput {
    /// The workload as last seen by the watch.
    pub workload: Arc<Workload>,
    /// The annotations parsed against the config, or every problem with them.
    pub spec: Result<TargetSpec, String>,
    /// The fingerprint of [`TargetInput::row_spec`], so the target row is rewritten when
    /// the spec changes.
    pub spec_fingerprint: u64,
}

impl TargetInput {
    /// Parses the workload's annotations with the hub's profiles. A target whose profile
    /// runs no hook never needs the workload's JSON, so it is dropped here.
    pub fn new(ctx: &Context, workload: Arc<Workload>) -> Self {
        let spec = ctx.profiles.parse_spec(&workload.annotations);
        let hooks = spec.as_ref().ok().and_then(|s| ctx.profiles.get(&s.profile)).is_none_or(|p| p.has_hooks());
        let workload = if hooks || !workload.has_json() { workload } else { Arc::new(workload.without_json()) };
        let mut input = Self { workload, spec, spec_fingerprint: 0 };
        input.spec_fingerprint = record::json_fingerprint(&input.row_spec());
        input
    }

    /// The target row's `spec`: the parsed spec, or the annotations when they are invalid.
    pub fn row_spec(&self) -> scalehub_store::Json {
        match &self.spec {
            Ok(spec) => scalehub_store::Json::of(spec),
            Err(_) => scalehub_store::Json::of(&self.workload.annotations),
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        let interval = self.spec.as_ref().map(|s| s.interval).unwrap_or(Duration::from_secs(15));
        interval.clamp(scalehub_core::spec::MIN_INTERVAL, scalehub_core::spec::MAX_INTERVAL)
    }
}

impl Context {
    /// Runs the target's stages now, between its ticks (the CPA's `metrics` and `evaluation` calls).
    pub async fn run_now(&self, key: &TargetKey, run_type: scalehub_hooks::RunType) -> Result<TickResult, RunError> {
        let handle = self.loops.read().ok().and_then(|m| m.get(key).cloned()).ok_or(RunError::NotFound)?;
        let (reply, rx) = oneshot::channel();
        handle.commands.send(Box::new(Command::Run { run_type, reply })).await.map_err(|_| RunError::Stopped)?;
        rx.await.map_err(|_| RunError::Stopped)?
    }

    /// Runs only the target's metric stage now, between its ticks.
    pub async fn metrics_now(
        &self,
        key: &TargetKey,
        run_type: scalehub_hooks::RunType,
    ) -> Result<Result<Vec<scalehub_hooks::MetricValue>, String>, RunError> {
        let handle = self.loops.read().ok().and_then(|m| m.get(key).cloned()).ok_or(RunError::NotFound)?;
        let (reply, rx) = oneshot::channel();
        handle.commands.send(Box::new(Command::Metrics { run_type, reply })).await.map_err(|_| RunError::Stopped)?;
        rx.await.map_err(|_| RunError::Stopped)?
    }
}

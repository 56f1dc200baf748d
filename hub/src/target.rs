//! The per-target loop: ticks at the target's interval with a jittered start, and never
//! lets one target's trouble reach another.
//!
//! A slow hook delays only its own target (ticks of one target never overlap; a tick that
//! overruns its interval makes the next one start late, and the lateness is measured). An
//! error in a tick is recorded in the decision history and retried on the next tick; it
//! never ends the loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use scalehub_core::policy::{Override, PolicyState};
use scalehub_core::spec::TargetSpec;

use crate::events::Events;
use crate::profile::Profiles;
use crate::scaler::Scaler;
use crate::telemetry::Metrics;
use crate::tick;
use crate::watch::{HpaIndex, PodIndex};
use crate::workload::{TargetKey, Workload};

/// Everything target loops share; one per hub.
pub struct Shared {
    /// Kubernetes client (for metrics APIs; workloads and pods come from the caches).
    pub client: kube::Client,
    /// Profiles from the config, with their hooks resolved.
    pub profiles: Profiles,
    /// The database.
    pub store: scalehub_store::Store,
    /// Runs hooks under the global concurrency bound.
    pub hooks: scalehub_hooks::HookRunner,
    /// Pods by namespace, from the pod watch.
    pub pods: PodIndex,
    /// PodMetrics shared by namespace.
    pub pod_metrics: crate::podmetrics::PodMetricsCache,
    /// Workloads that an HPA owns.
    pub hpas: HpaIndex,
    /// Writes `/scale`.
    pub scaler: Scaler,
    /// Events on workloads.
    pub events: Events,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Whether this hub holds the lease; standbys decide nothing.
    pub leader: watch::Receiver<bool>,
    /// Active overrides by target, mirrored from the store so ticks need no query.
    pub overrides: RwLock<HashMap<TargetKey, Override>>,
    /// Policy states restored from the store at start, taken by each loop when it starts.
    pub restored: Mutex<HashMap<TargetKey, PolicyState>>,
    /// Wall clock in unix milliseconds; replaceable in tests (e.g. to expire overrides).
    pub clock: Clock,
    /// The running loops, for the API's on-demand runs.
    pub loops: RwLock<HashMap<TargetKey, LoopHandle>>,
    /// Decisions and target changes for the API's live stream; sending never blocks a tick.
    pub stream: tokio::sync::broadcast::Sender<crate::api::stream::StreamEvent>,
}

/// A wall clock in unix milliseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A request to a target's loop, answered between its ticks so it never races them.
#[derive(Debug)]
pub enum Command {
    /// Run the stages now with this run type (`api` scales like a tick; `api_dry_run` never
    /// scales and leaves the stabilisation state alone) and answer with the result.
    Run {
        /// `api` or `api_dry_run`.
        run_type: scalehub_hooks::RunType,
        /// Where the result goes.
        reply: oneshot::Sender<Result<tick::TickResult, RunError>>,
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
    /// This hub is a standby; the leader answers.
    #[error("this hub is not the leader")]
    NotLeader,
    /// The loop stopped while the request waited.
    #[error("the target's loop stopped")]
    Stopped,
}

impl Shared {
    /// Marks a target removed in the store (its history stays).
    pub async fn target_removed(&self, key: &TargetKey) {
        let at = (self.clock)();
        if let Err(e) = self.store.mark_target_removed(&key.clone(), at).await {
            tracing::warn!(target_key = %key, error = %e, "could not mark the target removed");
        }
        self.metrics.current_replicas.remove(&crate::telemetry::TargetLabels::from(key));
        self.metrics.desired_replicas.remove(&crate::telemetry::TargetLabels::from(key));
    }

    /// Runs the target's stages now, between its ticks (the CPA's `metrics` and `evaluation` calls).
    pub async fn run_now(
        &self,
        key: &TargetKey,
        run_type: scalehub_hooks::RunType,
    ) -> Result<tick::TickResult, RunError> {
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

    /// The active override of a target at `now`, if any.
    pub fn override_for(&self, key: &TargetKey, now: i64) -> Option<Override> {
        let map = self.overrides.read().ok()?;
        map.get(key).filter(|o| o.active_at(now)).cloned()
    }
}

/// The latest view of one target: its workload and its parsed spec.
#[derive(Debug)]
pub struct TargetInput {
    /// The workload as last seen by the watch.
    pub workload: Arc<Workload>,
    /// The annotations parsed against the config, or every problem with them.
    pub spec: Result<TargetSpec, String>,
}

impl TargetInput {
    /// Parses the workload's annotations with the hub's profiles. A target whose profile
    /// runs no hook never needs the workload's JSON, so it is dropped here.
    pub fn new(shared: &Shared, workload: Arc<Workload>) -> Self {
        let spec = shared.profiles.parse_spec(&workload.annotations);
        let hooks = spec.as_ref().ok().and_then(|s| shared.profiles.get(&s.profile)).is_none_or(|p| p.has_hooks());
        let workload = if hooks || !workload.has_json() { workload } else { Arc::new(workload.without_json()) };
        Self { workload, spec }
    }

    fn interval(&self) -> Duration {
        self.spec.as_ref().map(|s| s.interval).unwrap_or(Duration::from_secs(15)).max(Duration::from_secs(1))
    }
}

/// Runs one target's loop until `cancel` fires.
pub async fn run(
    shared: Arc<Shared>,
    key: TargetKey,
    mut input: watch::Receiver<Arc<TargetInput>>,
    mut commands: mpsc::Receiver<Box<Command>>,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!("target", namespace = %key.namespace, kind = %key.kind, name = %key.name);
    async move {
        let restored = shared.restored.lock().ok().and_then(|mut m| m.remove(&key)).unwrap_or_default();
        let mut memory = tick::Memory::restored(restored);
        // List the target at once, not only after its first (jittered) tick.
        let first = input.borrow().clone();
        // The stages' futures are boxed: held inline, they would make every idle loop carry
        // the few kilobytes of state that only a running tick needs.
        Box::pin(tick::announce(&shared, &key, &first, &mut memory)).await;
        let mut interval = input.borrow().interval();
        // Spread first ticks over one interval so a restart or a mass opt-in is no thundering herd.
        let jitter = rand::rng().random_range(0..interval.as_millis().max(1) as u64);
        let mut next = Instant::now() + Duration::from_millis(jitter);
        shared.metrics.tick_log.schedule(next, interval);
        let mut last_start: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                changed = input.changed() => {
                    if changed.is_err() { break }
                    // A shorter interval applies at once: the next tick is due one new interval
                    // after the last one, not after the old, longer interval.
                    let new_interval = input.borrow().interval();
                    if new_interval != interval {
                        interval = new_interval;
                        if let Some(start) = last_start {
                            next = next.min(start + interval);
                        }
                    }
                    continue;
                }
                Some(command) = commands.recv() => {
                    let current = input.borrow().clone();
                    Box::pin(handle_command(&shared, &key, &current, &mut memory, command)).await;
                    continue;
                }
                _ = tokio::time::sleep_until(next) => {}
            }
            let start = Instant::now();
            shared.metrics.tick_lateness.observe(start.saturating_duration_since(next).as_secs_f64());
            shared.metrics.tick_log.tick(next, start);
            last_start = Some(start);
            let current = input.borrow().clone();
            Box::pin(tick::scheduled(&shared, &key, &current, &mut memory)).await;
            next += interval;
            if next <= Instant::now() {
                // Overran: skip the missed ticks instead of firing them back to back.
                next = Instant::now() + interval;
            }
        }
    }
    .instrument(span)
    .await
}

async fn handle_command(
    shared: &Arc<Shared>,
    key: &TargetKey,
    input: &TargetInput,
    memory: &mut tick::Memory,
    command: Box<Command>,
) {
    let (run_type, reply) = match *command {
        Command::Run { run_type, reply } => (run_type, reply),
        Command::Metrics { run_type, reply } => {
            let result = match &input.spec {
                Err(e) => Err(RunError::Invalid(e.clone())),
                Ok(spec) => Ok(tick::metrics_only(shared, key, input, spec, run_type).await),
            };
            let _ = reply.send(result);
            return;
        }
    };
    let result = match &input.spec {
        Err(e) => Err(RunError::Invalid(e.clone())),
        Ok(_) if run_type != scalehub_hooks::RunType::ApiDryRun && !*shared.leader.borrow() => Err(RunError::NotLeader),
        Ok(spec) => match shared.hpas.owner(key) {
            Some(hpa) => Err(RunError::Conflict(format!("HorizontalPodAutoscaler {hpa} already scales this workload"))),
            None => Ok(tick::decide(shared, key, input, spec, memory, run_type, (shared.clock)()).await),
        },
    };
    let _ = reply.send(result);
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    /// Every target's loop lives as long as the target, so its idle size is paid 100,000 times
    /// in a large hub; the state of a running tick must live in a box, not inline.
    #[tokio::test]
    async fn an_idle_loop_carries_no_tick_state() {
        let store = scalehub_store::Store::open("sqlite::memory:").await.unwrap();
        let shared = crate::api::testing::shared(store, Arc::new(|| 0), true).unwrap();
        let obj: kube::api::DynamicObject =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "web"}})).unwrap();
        let input = Arc::new(super::TargetInput::new(&shared, Arc::new(crate::workload::Workload::from_object(obj))));
        let (_input_tx, input_rx) = tokio::sync::watch::channel(input);
        let (_commands_tx, commands_rx) = tokio::sync::mpsc::channel(8);
        let key = crate::workload::TargetKey::new("shop", crate::workload::Kind::Deployment, "web");
        let run = super::run(shared, key, input_rx, commands_rx, Default::default());
        let size = std::mem::size_of_val(&run);
        assert!(size <= 2048, "an idle target loop takes {size} bytes");
    }
}

//! The per-target loop: ticks at the target's interval with a jittered start, and never
//! lets one target's trouble reach another.
//!
//! A slow hook delays only its own target (ticks of one target never overlap; a tick that
//! overruns its interval makes the next one start late, and the lateness is measured). An
//! error in a tick is recorded in the decision history and retried on the next tick; it
//! never ends the loop.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::hub::Context;
use crate::target::{Command, RunError, TargetInput, tick};
use crate::workload::TargetKey;

/// Runs one target's loop until `cancel` fires.
pub async fn run(
    ctx: Arc<Context>,
    key: TargetKey,
    mut input: watch::Receiver<Arc<TargetInput>>,
    mut commands: mpsc::Receiver<Box<Command>>,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!("target", namespace = %key.namespace, kind = %key.kind, name = %key.name);
    async move {
        let restored = ctx.restored.lock().ok().and_then(|mut m| m.remove(&key)).unwrap_or_default();
        let mut memory = tick::Memory::restored(restored, &input.borrow().workload.uid);
        // List the target at once, not only after its first (jittered) tick.
        let first = input.borrow().clone();
        // The stages' futures are boxed: held inline, they would make every idle loop carry
        // the few kilobytes of state that only a running tick needs.
        Box::pin(tick::announce(&ctx, &key, &first, &mut memory)).await;
        let mut interval = input.borrow().interval();
        // Spread first ticks over one interval so a restart or a mass opt-in is no thundering herd.
        let jitter = rand::rng().random_range(0..interval.as_millis().max(1) as u64);
        let mut next = Instant::now() + Duration::from_millis(jitter);
        ctx.metrics.tick_log.schedule(next, interval);
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
                    Box::pin(handle_command(&ctx, &key, &current, &mut memory, command)).await;
                    continue;
                }
                _ = tokio::time::sleep_until(next) => {}
            }
            let start = Instant::now();
            ctx.metrics.tick_lateness.observe(start.saturating_duration_since(next).as_secs_f64());
            ctx.metrics.tick_log.tick(next, start);
            last_start = Some(start);
            let current = input.borrow().clone();
            Box::pin(tick::scheduled(&ctx, &key, &current, &mut memory)).await;
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
    ctx: &Arc<Context>,
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
                Ok(spec) => Ok(tick::metrics_only(ctx, key, input, spec, run_type).await),
            };
            let _ = reply.send(result);
            return;
        }
    };
    let result = match &input.spec {
        Err(e) => Err(RunError::Invalid(e.clone())),
        Ok(_) if run_type != scalehub_hooks::RunType::ApiDryRun && !*ctx.leader.borrow() => Err(RunError::NotLeader),
        Ok(spec) => match ctx.hpas.owner(key) {
            Some(hpa) => Err(RunError::Conflict(format!("HorizontalPodAutoscaler {hpa} already scales this workload"))),
            None => Ok(tick::decide(ctx, key, input, spec, memory, run_type, (ctx.clock)()).await),
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
        let ctx = crate::api::testing::context(store, Arc::new(|| 0), true).unwrap();
        let obj: kube::api::DynamicObject =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "web"}})).unwrap();
        let input = Arc::new(super::TargetInput::new(&ctx, Arc::new(crate::workload::Workload::from_object(obj))));
        let (_input_tx, input_rx) = tokio::sync::watch::channel(input);
        let (_commands_tx, commands_rx) = tokio::sync::mpsc::channel(8);
        let key = crate::workload::TargetKey::new("shop", crate::workload::Kind::Deployment, "web");
        let run = super::run(ctx, key, input_rx, commands_rx, Default::default());
        let size = std::mem::size_of_val(&run);
        assert!(size <= 2048, "an idle target loop takes {size} bytes");
    }
}

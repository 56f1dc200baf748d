//! The per-target loop: ticks at the target's interval with a jittered start, and never
//! lets one target's trouble reach another.
//!
//! A slow hook delays only its own target (ticks of one target never overlap; a tick that
//! overruns its interval makes the next one start late, and the lateness is measured). An
//! error in a tick is recorded in the decision history and retried on the next tick; it
//! never ends the loop.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::hub::Context;
use crate::target::{Command, RunError, TargetInput, tick};
use crate::workload::TargetKey;

/// Takes one target's restored state out of the hub's map, and gives the map's memory back as
/// it empties: a map sized for 100,000 targets would otherwise keep its buckets (some 70 MB)
/// for the life of the hub.
fn take_restored(
    map: &mut std::collections::HashMap<TargetKey, crate::hub::Restored>,
    key: &TargetKey,
) -> Option<crate::hub::Restored> {
    let restored = map.remove(key);
    if map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
    restored
}

/// Runs one target's loop until `cancel` fires or its input ends. A loop that panics is
/// restarted after a pause that grows with each panic (up to a minute), counted in
/// `scalehub_target_loop_restarts_total`, and its target shows the panic as its error until a
/// tick succeeds again; its policy state is read back from the store.
pub async fn supervise(
    ctx: Arc<Context>,
    key: TargetKey,
    mut input: watch::Receiver<Arc<TargetInput>>,
    mut commands: mpsc::Receiver<Box<Command>>,
    cancel: CancellationToken,
) {
    let span = tracing::info_span!("target", namespace = %key.namespace, kind = %key.kind, name = %key.name);
    async move {
        let mut restarts = 0u32;
        loop {
            let memory = match restarts {
                0 => {
                    let restored =
                        ctx.restored.lock().ok().and_then(|mut m| take_restored(&mut m, &key)).unwrap_or_default();
                    tick::Memory::restored(restored, &input.borrow().workload.uid)
                }
                _ => Box::pin(reloaded(&ctx, &key)).await,
            };
            let once = run(&ctx, &key, &mut input, &mut commands, &cancel, memory);
            let Err(panic) = std::panic::AssertUnwindSafe(once).catch_unwind().await else { return };
            restarts = restarts.saturating_add(1);
            let message = panic_message(panic.as_ref());
            ctx.metrics.loop_restarts.inc();
            tracing::error!(restarts, panic = %message, "the target's loop panicked; restarting it");
            let error = format!("the target's loop panicked ({message}) and was restarted ({restarts} so far)");
            if let Err(e) = ctx.store.set_target_error(&key, &error, (ctx.clock)()).await {
                tracing::warn!(error = %e, "the panic could not be recorded on the target");
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(restart_pause(restarts)) => {}
            }
        }
    }
    .instrument(span)
    .await
}

/// The pause before the `restarts`th restart: 1 s, 2 s, 4 s, … up to a minute.
fn restart_pause(restarts: u32) -> Duration {
    Duration::from_secs(1u64 << restarts.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

/// What a panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

/// Memory rebuilt from the store after a panic: the persisted policy state.
async fn reloaded(ctx: &Context, key: &TargetKey) -> tick::Memory {
    let policy = match tick::stored_policy(ctx, key).await {
        Ok(policy) => policy,
        Err(e) => {
            tracing::warn!(error = %e, "policy state not reloaded after a panic");
            Default::default()
        }
    };
    tick::Memory::restored(crate::hub::Restored { policy, ..Default::default() }, &None)
}

/// One run of a target's loop, until `cancel` fires or its input ends.
async fn run(
    ctx: &Arc<Context>,
    key: &TargetKey,
    input: &mut watch::Receiver<Arc<TargetInput>>,
    commands: &mut mpsc::Receiver<Box<Command>>,
    cancel: &CancellationToken,
    mut memory: tick::Memory,
) {
    // List the target at once, not only after its first (jittered) tick.
    let first = input.borrow().clone();
    // The stages' futures are boxed: held inline, they would make every idle loop carry
    // the few kilobytes of state that only a running tick needs.
    Box::pin(tick::announce(ctx, key, &first, &mut memory)).await;
    let mut interval = input.borrow().interval();
    let start_time = input.borrow().spec.as_ref().ok().and_then(|s| s.start_time);
    let jitter = rand::rng().random_range(0..interval.as_millis().max(1) as u64);
    let mut next = later(Instant::now(), first_delay((ctx.clock)(), interval, start_time, jitter));
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
                        next = next.min(later(start, interval));
                    }
                }
                continue;
            }
            Some(command) = commands.recv() => {
                let current = input.borrow().clone();
                Box::pin(handle_command(ctx, key, &current, &mut memory, command)).await;
                continue;
            }
            _ = tokio::time::sleep_until(next) => {}
        }
        let start = Instant::now();
        ctx.metrics.tick_lateness.observe(start.saturating_duration_since(next).as_secs_f64());
        ctx.metrics.tick_log.tick(next, start);
        last_start = Some(start);
        let current = input.borrow().clone();
        Box::pin(tick::scheduled(ctx, key, &current, &mut memory)).await;
        next = later(next, interval);
        if next <= Instant::now() {
            // Overran: skip the missed ticks instead of firing them back to back.
            next = later(Instant::now(), interval);
        }
    }
}

/// How long a target's first tick waits. With a start time (the CPA's `startTime`), as the
/// CPA starts its ticker: until the next multiple of the start time in wall-clock time, then
/// one interval ("start on the full minute"). Without one, `jitter` (drawn from one interval),
/// so a restart or a mass opt-in is no thundering herd.
fn first_delay(now_ms: i64, interval: Duration, start_time: Option<Duration>, jitter: u64) -> Duration {
    match start_time.map(|s| s.as_millis().max(1) as i64) {
        Some(period) => Duration::from_millis((period - now_ms.rem_euclid(period)) as u64) + interval,
        None => Duration::from_millis(jitter),
    }
}

/// `at + by`, or a day after `at` if that overflows (intervals are validated to at most a
/// day, so this never changes a schedule; it keeps a bad value from panicking a loop).
fn later(at: Instant, by: Duration) -> Instant {
    at.checked_add(by).or_else(|| at.checked_add(scalehub_core::spec::MAX_INTERVAL)).unwrap_or(at)
}

async fn handle_command(
    ctx: &Arc<Context>,
    key: &TargetKey,
    input: &TargetInput,
    memory: &mut tick::Memory,
    command: Box<Command>,
) {
    let (run_type, reply) = match *command {
        #[cfg(test)]
        Command::Panic => panic!("a test asked this loop to panic"),
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
        Ok(_) if run_type != scalehub_hooks::RunType::ApiDryRun && !tick::may_scale(ctx, memory) => {
            Err(match ctx.shard {
                None => RunError::NotLeader,
                Some(_) => RunError::NotOwner,
            })
        }
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
    use std::time::Duration;

    use super::first_delay;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_restored_map_gives_its_memory_back_as_the_targets_take_their_state() {
        use scalehub_core::{Kind, TargetKey};
        let keys: Vec<TargetKey> =
            (0..1000).map(|i| TargetKey::new("shop", Kind::Deployment, format!("w{i}"))).collect();
        let mut map: std::collections::HashMap<_, _> =
            keys.iter().map(|k| (k.clone(), crate::hub::Restored::default())).collect();
        let full = map.capacity();
        for key in &keys[..900] {
            assert!(super::take_restored(&mut map, key).is_some());
        }
        assert!(map.capacity() < full / 4, "{} of {full} buckets kept for 100 entries", map.capacity());
        for key in &keys[900..] {
            assert!(super::take_restored(&mut map, key).is_some());
        }
        assert_eq!(map.capacity(), 0);
        assert!(super::take_restored(&mut map, &keys[0]).is_none());
    }

    #[test]
    fn a_start_time_aligns_the_first_tick_as_the_cpa_does() {
        // 12:00:42.5 with `startTime: 60000` and a 15 s interval: the CPA waits for 12:01:00,
        // starts its ticker, and runs first at 12:01:15.
        let now = 43_200_000 + 42_500;
        assert_eq!(first_delay(now, 15 * SECOND, Some(60 * SECOND), 999), Duration::from_millis(17_500) + 15 * SECOND);
        // Exactly on the minute it waits a whole period, as `startTime - now % startTime` does.
        assert_eq!(first_delay(43_200_000, 15 * SECOND, Some(60 * SECOND), 999), 75 * SECOND);
        // Without a start time, the jitter drawn for this target.
        assert_eq!(first_delay(now, 15 * SECOND, None, 999), Duration::from_millis(999));
    }

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
        let run = super::supervise(ctx, key, input_rx, commands_rx, Default::default());
        let size = std::mem::size_of_val(&run);
        assert!(size <= 2048, "an idle target loop takes {size} bytes");
    }

    // Real time: the store's pool times out under paused time. The restart waits its first
    // pause of one second; the pauses themselves are checked below without waiting.
    #[tokio::test]
    async fn a_loop_that_panics_is_restarted_counted_and_its_target_says_why() {
        let store = scalehub_store::Store::open("sqlite::memory:").await.unwrap();
        let ctx = crate::api::testing::context(store.clone(), Arc::new(|| 1_000), true).unwrap();
        let obj: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u1",
                         "annotations": {"scalehub.io/enabled": "true"}},
        }))
        .unwrap();
        let input = Arc::new(super::TargetInput::new(&ctx, Arc::new(crate::workload::Workload::from_object(obj))));
        let (_input_tx, input_rx) = tokio::sync::watch::channel(input);
        let (commands, commands_rx) = tokio::sync::mpsc::channel(8);
        let key = crate::workload::TargetKey::new("shop", crate::workload::Kind::Deployment, "web");
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(super::supervise(ctx.clone(), key.clone(), input_rx, commands_rx, cancel.clone()));

        commands.send(Box::new(super::Command::Panic)).await.unwrap();
        while ctx.metrics.loop_restarts.get() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        store.flush().await.unwrap();
        let row = store.get_target(&key).await.unwrap().unwrap();
        assert_eq!(row.state, "error");
        assert!(row.error.as_deref().unwrap_or_default().contains("a test asked this loop to panic"), "{row:?}");

        // After its pause the loop runs again and answers between ticks.
        let (reply, answer) = tokio::sync::oneshot::channel();
        let run_type = scalehub_hooks::RunType::ApiDryRun;
        commands.send(Box::new(super::Command::Run { run_type, reply })).await.unwrap();
        let answer = answer.await.expect("the restarted loop answers");
        assert!(matches!(answer, Err(super::RunError::Invalid(_))), "{answer:?}");
        assert_eq!(ctx.metrics.loop_restarts.get(), 1);
        cancel.cancel();
        task.await.unwrap();
    }

    #[test]
    fn restarts_pause_longer_each_time_up_to_a_minute() {
        let pauses: Vec<u64> = (1..=9).map(|n| super::restart_pause(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}

//! The registry of targets: turns workload watch events into per-target loops.
//!
//! One loop task per opted-in workload. The registry pushes the latest workload object
//! into the loop's `watch` channel, so an annotation edit takes effect on the next tick
//! without a restart, and a loop never reads the API server for its workload. Opting
//! out or deleting the workload ends its loop; its history stays in the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::hub::Context;
use crate::target::{LoopHandle, TargetInput, task};
use crate::watch::WorkloadChange;
use crate::workload::{Kind, TargetKey, Workload};

struct Handle {
    input: watch::Sender<Arc<TargetInput>>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

/// Owns every target loop.
pub struct Registry {
    ctx: Arc<Context>,
    targets: HashMap<TargetKey, Handle>,
    /// Set once every watch scope has listed: before that the hub is not ready.
    ready: Arc<AtomicBool>,
    scopes: usize,
    listed: HashSet<(Kind, Option<String>)>,
}

impl Registry {
    /// An empty registry whose loops share `ctx`.
    /// `scopes` is the number of workload watches; readiness waits for each one's first list.
    pub fn new(ctx: Arc<Context>, ready: Arc<AtomicBool>, scopes: usize) -> Self {
        Self { ctx, targets: HashMap::new(), ready, scopes, listed: HashSet::new() }
    }

    /// Applies workload changes until the channel closes or `shutdown` fires, then stops every loop.
    pub async fn run(mut self, mut changes: mpsc::Receiver<WorkloadChange>, shutdown: CancellationToken) {
        loop {
            let change = tokio::select! {
                _ = shutdown.cancelled() => break,
                () = self.ctx.reconfigured.notified() => {
                    self.reconfigured();
                    continue;
                }
                change = changes.recv() => change,
            };
            match change {
                None => break,
                Some(WorkloadChange::Applied(key, workload)) => self.applied(key, workload).await,
                Some(WorkloadChange::Deleted(key)) => self.remove(&key, "deleted").await,
                Some(WorkloadChange::Listed { kind, namespace, keys }) => self.listed(kind, namespace, keys).await,
            }
        }
        let handles: Vec<Handle> = self.targets.drain().map(|(_, h)| h).collect();
        for h in &handles {
            h.cancel.cancel();
        }
        for h in handles {
            let _ = h.task.await;
        }
    }

    /// A reloaded config is in force: every target's annotations are read again against it
    /// (new defaults, profiles added or gone), effective from its next tick.
    fn reconfigured(&self) {
        for handle in self.targets.values() {
            let workload = handle.input.borrow().workload.clone();
            handle.input.send_replace(Arc::new(TargetInput::new(&self.ctx, workload)));
        }
        tracing::info!(targets = self.targets.len(), "targets re-read against the reloaded config");
    }

    async fn applied(&mut self, key: TargetKey, workload: Arc<Workload>) {
        // A workload with a controlling owner (the ReplicaSets of a Deployment, which inherit
        // its annotations) is scaled by that owner; scaling it too would fight the owner.
        if !scalehub_core::spec::is_opted_in(&workload.annotations) || workload.controlled {
            if self.targets.contains_key(&key) {
                self.remove(&key, "opted out").await;
            }
            return;
        }
        let input = Arc::new(TargetInput::new(&self.ctx, workload));
        match self.targets.get(&key) {
            Some(handle) => {
                handle.input.send_replace(input);
            }
            None => {
                // Debug, not info: a hub of 100,000 targets would log 100,000 lines at start;
                // the first list logs the count instead.
                tracing::debug!(target_key = %key, "target added");
                let (tx, rx) = watch::channel(input);
                // API requests queue here; a few suffice, as each waits for its answer.
                let (commands, command_rx) = mpsc::channel(8);
                if let Ok(mut loops) = self.ctx.loops.write() {
                    loops.insert(key.clone(), LoopHandle { commands, input: rx.clone() });
                }
                let cancel = CancellationToken::new();
                let task = tokio::spawn(task::supervise(self.ctx.clone(), key.clone(), rx, command_rx, cancel.clone()));
                self.targets.insert(key, Handle { input: tx, cancel, task });
            }
        }
    }

    async fn remove(&mut self, key: &TargetKey, why: &str) {
        if let Some(handle) = self.targets.remove(key) {
            tracing::info!(target_key = %key, why, "target removed");
            if let Ok(mut loops) = self.ctx.loops.write() {
                loops.remove(key);
            }
            handle.cancel.cancel();
            let _ = handle.task.await;
            self.ctx.target_removed(key).await;
        }
    }

    async fn listed(&mut self, kind: Kind, namespace: Option<String>, keys: HashSet<TargetKey>) {
        if kind.is_builtin() {
            self.listed.insert((kind, namespace.clone()));
        }
        if self.listed.len() >= self.scopes && !self.ready.swap(true, Ordering::Relaxed) {
            tracing::info!(targets = self.targets.len(), "workloads listed; targets running");
        }
        let gone: Vec<TargetKey> = self
            .targets
            .keys()
            .filter(|k| k.kind == kind && namespace.as_ref().is_none_or(|ns| *ns == k.namespace) && !keys.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            self.remove(&key, "missing from a relist").await;
        }
    }
}

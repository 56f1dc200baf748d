//! End-to-end tests of the hub (issue 3, "Done when"): a real hub — started in-process with
//! `hub::start`, or as the `scalehub run` binary where a `kill -9` is the point — against the
//! simulator always, and against a real kube-apiserver v1.20 when `SCALEHUB_REAL_KUBECONFIG`
//! is set. Each test gets its own namespace, database and Lease, so tests run in parallel.
//!
//! Hooks are CPA-style shell methods: the python scripts in `tests/e2e/hooks/` read the
//! workload's `scalehub.io/param.*` annotations from the payload, or `sh -c` one-liners.
//! Every wait is bounded; a failure names the server and shows the decisions the hub recorded.
//!
//! - [`scaling`]: annotate → scaled to the evaluation; clamping to max-replicas.
//! - [`restart`]: a scale-down held by its window across `kill -9` of `scalehub run`.
//! - [`invalid`]: invalid annotations and HPA conflicts are listed, reported, never scaled.
//! - [`hooks`]: failing, hanging and lying hooks hold only their own target.
//! - [`kinds`]: StatefulSets and ReplicaSets; shadow mode and zero replicas decide without scaling.
//! - [`rollouts`]: an `extraKinds:` Rollout scaled through `/scale` by the Argo Rollouts example.
//! - [`per_pod`]: the metric hook once per pod.
//! - [`leader`]: two hubs on one Lease.
//! - [`reload`]: a changed config file applies without a restart; an invalid one is refused.
//! - [`pid1`]: the hub as PID 1 of a PID namespace reaps and kills what its hooks leave behind.
//! - [`lifecycle`]: annotation edits without restart; opting out keeps the history.
//! - [`kubectl_plugin`]: kubectl runs `kubectl-scalehub` against a hub: get, why, pin, replay.
//! - [`observability`]: the Grafana dashboard and the alert rules query only what `/metrics` has.
//! - [`ownership`]: ReplicaSets owned by an opted-in Deployment are not targets.
//! - [`drill_chaos`]: API-server faults for a fleet; afterwards the replicas of a fault-free run.
//! - [`drill_crash`]: `kill -9` at random points never breaks a window or loses an override.
//! - [`drill_hooks`]: hooks that time out, crash, flood, escape and hang, all at once.
//! - [`drill_fds`]: the hub under `ulimit -n 1024` with 1,500 idle connections.
//! - [`cpa`]: a CPA profile has the CPA's defaults and reads evaluations as Go does.
//! - [`fallback`]: a failing target goes to its profile's fallback and leaves it when it recovers.
//! - [`scale_to_zero`]: an idle target goes to zero after its cooldown, an active one wakes at once.
//! - [`custom_metrics`]: Object, External and Pods metrics, built in and in CPA payloads (simulator only).
//! - [`builtin_cpu`]: the built-in HPA CPU calculation (simulator only: no metrics API on the real server).

mod builtin_cpu;
mod cpa;
mod custom_metrics;
mod drill_chaos;
mod drill_crash;
mod drill_fds;
mod drill_hooks;
mod fallback;
mod fixtures;
mod harness;
mod hooks;
mod invalid;
mod kinds;
mod kubectl_plugin;
mod leader;
mod lifecycle;
mod observability;
mod ownership;
mod per_pod;
mod pid1;
mod process;
mod reload;
mod restart;
mod rollouts;
mod scale_to_zero;
mod scaling;
mod sharding;

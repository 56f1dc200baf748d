//! scalehub: one process that autoscales many Kubernetes workloads.
//!
//! Modules in data-flow order:
//! - [`workload`]: the kinds scalehub scales and what it reads from them;
//! - [`watch`]: watches of workloads, pods and HPAs (no polling);
//! - [`target`]: one loop per opted-in workload, and one tick of it
//!   (hooks → evaluate → policy → scale → record);
//! - [`bus`]: what the loops record, published to whoever listens (the API's stream);
//! - [`profile`]: config profiles resolved into hook specs and metric queries;
//! - [`k8smetrics`], [`podmetrics`], [`builtin`]: Kubernetes metrics for hooks (PodMetrics read
//!   once per namespace) and the HPA's own calculation;
//! - [`overrides`]: operator overrides mirrored from the store;
//! - [`scaler`], [`events`]: writes to Kubernetes;
//! - [`leader`]: Lease-based leader election; [`shard`]: membership Leases and the assignment
//!   of targets to the replicas that share a PostgreSQL store;
//! - [`api`], [`telemetry`]: the HTTP server and metrics; [`web`]: the embedded dashboard;
//! - [`hub`]: the hub-wide context, and the wiring of it all; [`cli`], [`demo`] and [`bench`]: the commands;
//!   [`ctl`]: `kubectl scalehub`, the REST API from the terminal.

pub mod api;
pub mod bench;
pub mod bus;
pub mod cli;
pub mod ctl;
pub mod demo;
pub mod events;
pub mod hub;
pub mod k8smetrics;
pub mod leader;
pub mod overrides;
pub mod podmetrics;
pub mod profile;
pub mod reload;
pub mod scaler;
pub mod shard;
pub mod target;
pub mod telemetry;
pub mod watch;
pub mod web;
pub mod workload;

//! scalehub: one process that autoscales many Kubernetes workloads.
//!
//! Modules in data-flow order:
//! - [`workload`]: the kinds scalehub scales and what it reads from them;
//! - [`watch`]: watches of workloads, pods and HPAs (no polling);
//! - [`registry`]: one loop per opted-in workload;
//! - [`target`]: the per-target loop and one tick (hooks → evaluate → policy → scale → record);
//! - [`k8smetrics`], [`builtin`]: Kubernetes metrics for hooks and the HPA's own calculation;
//! - [`scaler`], [`events`]: writes to Kubernetes;
//! - [`leader`]: Lease-based leader election;
//! - [`api`], [`telemetry`]: the HTTP server and metrics.

pub mod api;
pub mod events;
pub mod leader;
pub mod scaler;
pub mod telemetry;
pub mod watch;
pub mod workload;

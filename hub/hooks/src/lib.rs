//! Hook execution with the Custom Pod Autoscaler's JSON contract.
//!
//! Layout, in the order a tick uses it:
//! - [`spec`]: what to run ([`HookSpec`]: a process or an HTTP endpoint); the lead maps the
//!   hub config's CPA method schema onto it.
//! - [`payload`]: the stage payloads (CPA field names plus `target`, `params`,
//!   `currentReplicas`).
//! - [`runner`]: [`HookRunner`], the shared handle with the global concurrency bound.
//! - `shell` / `http`: one file per transport; `tls` builds client TLS configs.
//! - [`evaluation`]: strict parsing of `{"targetReplicas": N}`.
//! - [`outcome`]: what a run leaves for the decision record; [`error`]: why it failed.
//! - [`reaper`]: what process hooks leave behind (orphans, zombies), reaped and killed.
//!
//! This crate has no Kubernetes types: workloads and pods arrive as `serde_json::Value`.
//! Process hooks are Unix-only (process groups).

mod capture;
pub mod error;
pub mod evaluation;
mod http;
pub mod outcome;
pub mod payload;
pub mod reaper;
pub mod runner;
mod shell;
pub mod spec;
pub mod tls;

pub use error::{HookError, HookFailure};
pub use evaluation::{Evaluation, EvaluationError, parse_evaluation};
pub use outcome::{HookOutcome, HookOutput};
pub use payload::{
    EvaluatePayload, FinalEvaluation, MetricPayload, MetricValue, RunType, ScalePayload, ScaleTargetRef, StageContext,
    TargetRef,
};
pub use runner::{HookRunner, HookRunnerConfig};
pub use spec::{HookKind, HookSpec, HttpSpec, ParameterMode, ShellSpec, TlsFiles};
pub use tls::TlsError;

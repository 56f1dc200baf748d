//! `scalehub-core`: scalehub's pure decision logic — plain data and functions, no I/O, no
//! Kubernetes, HTTP-server, database or async-runtime types, tested with plain `#[test]`s.
//!
//! # Layout (in data-flow order)
//!
//! - [`target`] — which workload a target is: [`Kind`] and [`TargetKey`].
//! - [`config`] — the hub config file: listen address, database, retention, hook concurrency,
//!   and the named hook **profiles** (a CPA `config.yaml` body, accepted unchanged, plus an
//!   optional HPA `behavior:`). Errors name the field path.
//! - [`spec`] — a workload's `scalehub.io/*` annotations → a typed [`TargetSpec`], reporting
//!   every bad annotation at once.
//! - [`calc`] — the built-in evaluation: the HPA's replica calculation over a tick's
//!   observations of each metric, which the tick series keeps for replays.
//! - [`policy`] — the decision pipeline: disabled → predict → clamp → override → stabilise →
//!   rate limits (and scale to zero around them), with a reason chain and a serialisable,
//!   self-pruning [`PolicyState`].
//! - [`predict`] — the predictive HPA's models (linear regression, Holt-Winters) in Rust.
//! - [`replay`] — a candidate policy over a target's recorded ticks, through the same pipeline.
//! - [`tolerance`] — the built-in calculation's tolerance per direction.
//! - [`selector`] — label selectors in their text form, as `/scale` reports them.
//! - [`duration`] and [`quantity`] — parsing of `15s`/`1h30m` durations and Kubernetes
//!   quantities (`250m`, `64Ki`, `12345678n`).
//!
//! # A tick, as the hub drives it
//!
//! ```
//! use std::collections::BTreeMap;
//! use scalehub_core::{Config, PolicyState, TargetSpec, decide, is_opted_in};
//!
//! let config = Config::from_yaml_str(r#"
//! profiles:
//!   default:
//!     metric:   {type: shell, timeout: 2500, shell: {entrypoint: python3, command: [/metric.py]}}
//!     evaluate: {type: shell, timeout: 2500, shell: {entrypoint: python3, command: [/evaluate.py]}}
//! "#).unwrap();
//! let annotations = BTreeMap::from([
//!     ("scalehub.io/enabled".to_owned(), "true".to_owned()),
//!     ("scalehub.io/max-replicas".to_owned(), "5".to_owned()),
//! ]);
//! assert!(is_opted_in(&annotations));
//! let spec = TargetSpec::from_annotations(&annotations, &config.spec_defaults()).unwrap();
//!
//! let state = PolicyState::default(); // loaded from the store in the hub
//! let decision = decide(&state, &spec.policy_input(1_700_000_000_000, 2, 9, None));
//! assert_eq!(decision.desired_replicas, 5); // clamped to max-replicas
//! let mut next = decision.next_state.clone(); // persist unless this was a dry run
//! if decision.wants_scale {
//!     // ... scale via /scale, then on success:
//!     next.record_scale(1_700_000_000_000, 2, decision.desired_replicas);
//! }
//! ```

pub mod calc;
pub mod config;
pub mod duration;
pub mod policy;
pub mod predict;
pub mod quantity;
pub mod replay;
pub mod selector;
pub mod spec;
pub mod target;
pub mod tolerance;

pub use config::{Config, ConfigError, Profile};
pub use duration::{DurationError, parse_duration};
pub use policy::{
    Decision, EpochMillis, Override, OverrideAction, PauseDirection, PolicyInput, PolicyState, Reason, ReasonCode,
    Step, decide,
};
pub use quantity::{QuantityError, parse_milli, parse_quantity};
pub use spec::{Mode, RunMode, SpecDefaults, SpecError, SpecErrors, TargetSpec, is_opted_in};
pub use target::{Kind, TargetKey};

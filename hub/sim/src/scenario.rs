//! Scenario files (placeholder).
use std::time::Duration;
use crate::faults::FaultConfig;
use crate::store::Store;
/// Scenario errors.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Invalid.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}
/// A scenario.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// Faults.
    pub faults: Option<FaultConfig>,
}
impl Scenario {
    /// Pod ready delay.
    pub fn pod_ready_delay(&self) -> Option<Duration> { None }
    /// Applies.
    pub fn apply(&self, _store: &Store) -> Result<(), ScenarioError> { Ok(()) }
}

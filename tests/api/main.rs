//! API tests: every endpoint of `/api/v1` with its auth rules and bad input, pagination over
//! thousands of targets, override expiry with a clock the test moves, and the CPA calls
//! against a hub running on the simulator.
//!
//! Most tests drive `api::app` in-process with `tower::ServiceExt::oneshot` over an
//! in-memory store (the least powerful test that works); `cpa_sim` runs a whole hub.

mod common;
mod cpa_sim;
mod errors;
mod hub;
mod overrides;
mod replay;
mod targets;

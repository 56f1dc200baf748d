//! scalehub's pure decision logic.
pub mod config;
pub mod duration;
pub mod policy;
pub mod quantity;
pub mod spec;

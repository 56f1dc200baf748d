//! scalehub's pure decision logic.
pub mod duration;
pub mod policy;
pub mod quantity;

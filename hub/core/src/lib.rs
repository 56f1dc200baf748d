//! scalehub's pure decision logic.
pub mod duration;
pub mod quantity;

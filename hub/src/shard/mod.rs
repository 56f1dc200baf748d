//! Sharding targets over hub replicas that share one PostgreSQL store.
//!
//! - [`assign`]: which live member owns which target (rendezvous hashing: every member
//!   computes the same answer; a join or a leave moves only that member's share).
//! - [`members`]: membership through one Lease per replica (`scalehub-member-<identity>`),
//!   renewed like the leader Lease, and the list of live members as this replica sees it.

pub mod assign;
pub mod members;

//! Sharding targets over hub replicas that share one PostgreSQL store.
//!
//! - [`assign`]: which live member owns which target (rendezvous hashing: every member
//!   computes the same answer; a join or a leave moves only that member's share).
//! - [`members`]: membership through one Lease per replica (`scalehub-member-<identity>`),
//!   renewed like the leader Lease, and the list of live members as this replica sees it.

pub mod assign;
pub mod members;

use std::net::SocketAddr;

use tokio::sync::watch;

use crate::workload::TargetKey;

/// This replica's part in a sharded hub: its identity and the live members it sees.
#[derive(Clone, Debug)]
pub struct Shard {
    /// This replica's identity (its membership Lease's holder).
    pub me: String,
    /// Where this replica's API answers the other members, as its Lease announces it.
    pub address: Option<SocketAddr>,
    /// The live members, as the membership task last saw them.
    pub members: watch::Receiver<members::Members>,
}

impl Shard {
    /// Whether `key` is this replica's now: it is live and the assignment names it.
    pub fn assigned(&self, key: &TargetKey) -> bool {
        let members = self.members.borrow();
        members.me_live && assign::owner(key, &members.live) == Some(self.me.as_str())
    }

    /// The live member the assignment gives `key` to, and where its API answers (`None`
    /// for this replica itself and for a member that announces no address); `None` when no
    /// member is live.
    pub fn owner(&self, key: &TargetKey) -> Option<(String, Option<SocketAddr>)> {
        let members = self.members.borrow();
        let owner = assign::owner(key, &members.live)?;
        Some((owner.to_owned(), members.addresses.get(owner).copied()))
    }

    /// The live members.
    pub fn live(&self) -> Vec<String> {
        self.members.borrow().live.clone()
    }
}

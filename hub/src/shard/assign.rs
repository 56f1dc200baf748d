//! Which member owns which target: rendezvous (highest random weight) hashing.
//!
//! Every member computes the same answer from the same list of live members, with no
//! coordination: a target belongs to the member whose hash of (member, target) is highest.
//! When a member joins, it takes about 1/N of the targets, each from whoever had it; when one
//! leaves, only its targets move, spread over the others. The hash is FNV-1a over the bytes
//! with a SplitMix64 finish, written out here because it must never change between versions:
//! replicas of different versions during a rolling upgrade must agree on every owner
//! (std's `DefaultHasher` makes no such promise).

use crate::workload::TargetKey;

/// The member that owns `key` among `members` (live identities, in any order); `None`
/// when there are none. Ties (astronomically rare) go to the smaller identity, so that every
/// member still agrees.
pub fn owner<'a>(key: &TargetKey, members: &'a [String]) -> Option<&'a str> {
    let target = target_hash(key);
    members
        .iter()
        .map(|member| (weight(member, target), member.as_str()))
        .max_by(|(a, ma), (b, mb)| a.cmp(b).then_with(|| mb.cmp(ma)))
        .map(|(_, member)| member)
}

/// The hash of a target, the part of the weight shared by every member.
fn target_hash(key: &TargetKey) -> u64 {
    let mut h = Fnv::default();
    h.write(key.namespace.as_bytes());
    h.write(&[0]);
    h.write(key.kind.as_str().as_bytes());
    h.write(&[0]);
    h.write(key.name.as_bytes());
    h.0
}

/// The weight of `member` for a target.
fn weight(member: &str, target: u64) -> u64 {
    let mut h = Fnv::default();
    h.write(member.as_bytes());
    h.write(&[0]);
    h.write(&target.to_le_bytes());
    splitmix64(h.0)
}

/// 64-bit FNV-1a of `bytes`: a hash that never changes between versions.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = Fnv::default();
    h.write(bytes);
    h.0
}

/// 64-bit FNV-1a.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// SplitMix64's finaliser: spreads FNV's weak low-bit mixing over all 64 bits.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::workload::Kind;

    fn keys(n: usize) -> Vec<TargetKey> {
        (0..n).map(|i| TargetKey::new(format!("ns-{}", i % 37), Kind::Deployment, format!("app-{i}"))).collect()
    }

    fn members(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn shares(keys: &[TargetKey], members: &[String]) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for key in keys {
            *out.entry(owner(key, members).unwrap().to_owned()).or_default() += 1;
        }
        out
    }

    #[test]
    fn every_member_computes_the_same_owner_whatever_the_order_of_its_list() {
        let keys = keys(2_000);
        let a = members(&["hub-a", "hub-b", "hub-c"]);
        let b = members(&["hub-c", "hub-a", "hub-b"]);
        for key in &keys {
            assert_eq!(owner(key, &a), owner(key, &b));
        }
        assert_eq!(owner(&keys[0], &[]), None);
    }

    #[test]
    fn fnv_1a_matches_its_published_test_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn the_answer_never_changes_between_versions() {
        // Pinned values: a change of the hash would split a rolling upgrade's replicas.
        let key = TargetKey::new("prod", Kind::Deployment, "web");
        let m = members(&["scalehub-0", "scalehub-1", "scalehub-2"]);
        let pinned: Vec<&str> = ["web", "api", "db", "cache"]
            .iter()
            .map(|name| owner(&TargetKey::new("prod", Kind::Deployment, *name), &m).unwrap())
            .collect();
        assert_eq!(target_hash(&key), 0x40f4_1bb4_ee89_dfdd, "{:#x}", target_hash(&key));
        assert_eq!(pinned, ["scalehub-2", "scalehub-0", "scalehub-1", "scalehub-1"]);
    }

    #[test]
    fn shares_are_even_within_a_few_percent() {
        let keys = keys(30_000);
        let m = members(&["hub-a", "hub-b", "hub-c"]);
        for (member, n) in shares(&keys, &m) {
            assert!((9_400..=10_600).contains(&n), "{member} has {n} of 30,000");
        }
    }

    #[test]
    fn a_joining_member_takes_only_its_share_and_a_leaving_one_gives_up_only_its_own() {
        let keys = keys(12_000);
        let three = members(&["hub-a", "hub-b", "hub-c"]);
        let four = members(&["hub-a", "hub-b", "hub-c", "hub-d"]);
        let mut moved = 0;
        for key in &keys {
            let before = owner(key, &three).unwrap();
            let after = owner(key, &four).unwrap();
            if before != after {
                assert_eq!(after, "hub-d", "a target moved between two old members");
                moved += 1;
            }
        }
        assert!((2_700..=3_300).contains(&moved), "{moved} of 12,000 moved to the new member");
        // hub-b leaves: only its targets move.
        let two = members(&["hub-a", "hub-c"]);
        for key in &keys {
            let before = owner(key, &three).unwrap();
            if before != "hub-b" {
                assert_eq!(owner(key, &two).unwrap(), before);
            }
        }
    }
}

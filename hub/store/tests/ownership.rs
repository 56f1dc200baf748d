//! Sharded targets: claims, releases, handovers and the fence on a stale owner's writes.

mod common;

use common::{decision, key, policy, target};
use scalehub_store::{Claim, Fence, PolicyStateRow, StoreError};
use serde_json::json;

fn live(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn fenced(row: PolicyStateRow, fence: &Fence) -> PolicyStateRow {
    PolicyStateRow { fence: Some(fence.clone()), ..row }
}

on_each_backend! {
    #[tokio::test]
    async fn a_target_moves_only_when_released_or_its_owner_is_gone_and_the_old_owner_is_fenced(db) {
        let store = db.open().await;
        let k = key("ns", "web");
        store.upsert_target(target("ns", "web")).await.unwrap();
        let both = live(&["hub-a", "hub-b"]);

        let Claim::Owned(a1) = store.claim_target(&k, "hub-a", &both, 1).await.unwrap() else { panic!("a's claim") };
        assert_eq!(a1.epoch, 1);
        assert_eq!(store.claim_target(&k, "hub-b", &both, 2).await.unwrap(), Claim::Held, "a is live and holds it");
        store.save_policy_state(fenced(policy(&k, 3), &a1)).await.unwrap();

        // a hands the target over; b takes it with the next epoch.
        assert!(store.release_target(&k, &a1, 4).await.unwrap());
        let Claim::Owned(b2) = store.claim_target(&k, "hub-b", &both, 5).await.unwrap() else { panic!("b's claim") };
        assert_eq!(b2.epoch, 2);
        store.save_policy_state(fenced(PolicyStateRow { state: json!({"by": "b"}), ..policy(&k, 6) }, &b2)).await.unwrap();

        // a, late, writes under its old claim: refused, b's state stands, a's decision is not recorded.
        let error = store.save_policy_state(fenced(policy(&k, 7), &a1)).await.unwrap_err();
        assert!(matches!(error, StoreError::Fenced { epoch: 1, .. }), "{error:?}");
        let error = store.record_decision_committed(decision(&k, 8), Some(fenced(policy(&k, 8), &a1))).await.unwrap_err();
        assert!(matches!(error, StoreError::Fenced { .. }), "{error:?}");
        assert_eq!(store.policy_state(&k).await.unwrap().unwrap().state, json!({"by": "b"}));
        assert!(store.decisions(&k, None, 10).await.unwrap().is_empty());
        assert!(!store.release_target(&k, &a1, 9).await.unwrap(), "a stale claim releases nothing");

        // b dies: a, which no longer sees b live, takes the target back with a new epoch.
        let Claim::Owned(a3) = store.claim_target(&k, "hub-a", &live(&["hub-a"]), 10).await.unwrap() else {
            panic!("a's second claim")
        };
        assert_eq!(a3.epoch, 3);
        store.save_policy_state(fenced(policy(&k, 11), &a3)).await.unwrap();
        assert!(matches!(store.save_policy_state(fenced(policy(&k, 12), &b2)).await, Err(StoreError::Fenced { .. })));
        assert_eq!(store.target_owners().await.unwrap(), [(k.clone(), a3)]);
        assert_eq!(store.owner_counts().await.unwrap(), [("hub-a".to_owned(), 1)]);
    }
}

on_each_backend! {
    #[tokio::test]
    async fn a_fenced_tick_is_refused_whole_and_the_rest_of_its_batch_lands(db) {
        let store = db.open().await;
        let (web, api) = (key("ns", "web"), key("ns", "api"));
        store.upsert_targets(vec![target("ns", "web"), target("ns", "api")]).await.unwrap();
        let me = live(&["hub-a"]);
        let Claim::Owned(web_fence) = store.claim_target(&web, "hub-a", &me, 1).await.unwrap() else { panic!() };
        let Claim::Owned(api_fence) = store.claim_target(&api, "hub-a", &me, 1).await.unwrap() else { panic!() };
        // Another replica takes web over.
        assert!(store.release_target(&web, &web_fence, 2).await.unwrap());
        let Claim::Owned(_) = store.claim_target(&web, "hub-b", &live(&["hub-b"]), 3).await.unwrap() else { panic!() };
        for (k, fence) in [(&web, &web_fence), (&api, &api_fence)] {
            store.record_tick(Some(decision(k, 4)), Some(fenced(policy(k, 4), fence)), None).await.unwrap();
        }
        store.flush().await.unwrap();
        assert!(store.decisions(&web, None, 10).await.unwrap().is_empty(), "the stale owner's tick landed");
        assert!(store.policy_state(&web).await.unwrap().is_none());
        assert_eq!(store.decisions(&api, None, 10).await.unwrap().len(), 1);
        assert_eq!(store.policy_state(&api).await.unwrap().unwrap().updated_at, 4);
        assert_eq!(store.stats().rejected, 1);
    }
}

/// Two replicas on one PostgreSQL database race for the same targets: every target ends up
/// with exactly one owner, and it is the one whose claim says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_from_two_hubs_give_every_target_one_owner_on_postgres() {
    let Some(db) = common::TempDb::postgres().await else { return };
    let (a, b) = (db.open().await, db.open().await);
    let keys: Vec<_> = (0..200).map(|i| key("ns", &format!("app-{i}"))).collect();
    a.upsert_targets(keys.iter().map(|k| target("ns", &k.name)).collect()).await.unwrap();
    // Neither sees the other: both believe they may take every target.
    let race = |store: scalehub_store::Store, me: &'static str, keys: Vec<_>| {
        tokio::spawn(async move {
            let mut won = Vec::new();
            for k in keys {
                if let Claim::Owned(fence) = store.claim_target(&k, me, &[me.to_owned()], 1).await.unwrap() {
                    won.push((k, fence));
                }
            }
            won
        })
    };
    let (won_a, won_b) = tokio::join!(race(a.clone(), "hub-a", keys.clone()), race(b.clone(), "hub-b", keys.clone()));
    let (won_a, won_b) = (won_a.unwrap(), won_b.unwrap());
    let owners = a.target_owners().await.unwrap();
    assert_eq!(owners.len(), 200);
    for (k, fence) in owners {
        let claimed: Vec<_> = won_a.iter().chain(&won_b).filter(|(key, f)| key == &k && f == &fence).collect();
        assert_eq!(claimed.len(), 1, "{k}: the owner in the table is not the one claim that says so");
    }
}

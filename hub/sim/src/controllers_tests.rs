use super::*;
use serde_json::json;

fn deploy(name: &str, replicas: u64) -> Value {
    json!({"metadata": {"name": name}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "app", "image": "x"}]}}}})
}

fn set_replicas(store: &Store, slot: usize, name: &str, n: u64) {
    store
        .write(&RESOURCES[slot], "default", name, WriteMode::Main, false, false, |o| {
            let mut v = o.unwrap().as_ref().clone();
            v["spec"]["replicas"] = json!(n);
            Ok(v)
        })
        .unwrap();
}

/// Lets the controller task and the ready timers run.
async fn settle(d: Duration) {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::advance(d).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

fn pods_of(store: &Store, slot: usize, name: &str) -> Vec<Obj> {
    let w = store.get(slot, "default", name).unwrap();
    let uid = meta::meta_str(&w, "uid").unwrap();
    if slot == DEPLOYMENTS {
        // Deployment → ReplicaSet → pods.
        return store
            .owned_by(REPLICASETS, "default", uid)
            .iter()
            .flat_map(|rs| store.pods_owned_by("default", meta::meta_str(rs, "uid").unwrap()))
            .collect();
    }
    store.pods_owned_by("default", uid)
}

#[tokio::test(start_paused = true)]
async fn pods_follow_replicas_and_turn_ready_after_the_delay() {
    let store = Store::new(1000);
    let _ctl = spawn(store.clone(), Duration::from_secs(5));
    store.create(&RESOURCES[DEPLOYMENTS], "default", deploy("web", 3), false).unwrap();
    settle(Duration::from_millis(1)).await;
    let pods = pods_of(&store, DEPLOYMENTS, "web");
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Pending" && p["metadata"]["labels"]["app"] == "web"));
    // `web-<pod-template-hash>-<suffix>`, owned by the Deployment's ReplicaSet.
    assert!(
        pods.iter().all(|p| meta::name(p).starts_with("web-") && meta::name(p).len() == 20),
        "{:?}",
        pods.iter().map(|p| meta::name(p)).collect::<Vec<_>>()
    );
    let rs = store.owned_by(
        REPLICASETS,
        "default",
        meta::meta_str(&store.get(DEPLOYMENTS, "default", "web").unwrap(), "uid").unwrap(),
    );
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["spec"]["replicas"], 3);
    assert!(pods.iter().all(|p| p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"));
    let w = store.get(DEPLOYMENTS, "default", "web").unwrap();
    assert_eq!((w["status"]["replicas"].as_u64(), w["status"]["readyReplicas"].as_u64()), (Some(3), Some(0)));

    settle(Duration::from_secs(5)).await;
    let pods = pods_of(&store, DEPLOYMENTS, "web");
    assert!(pods.iter().all(|p| p["status"]["phase"] == "Running" && meta::pod_ready(p)));
    assert!(pods.iter().all(|p| p["status"]["podIP"].is_string()));
    let w = store.get(DEPLOYMENTS, "default", "web").unwrap();
    assert_eq!(w["status"]["readyReplicas"], 3);
    assert_eq!(w["status"]["observedGeneration"], 1);

    set_replicas(&store, DEPLOYMENTS, "web", 1);
    settle(Duration::from_millis(1)).await;
    assert_eq!(pods_of(&store, DEPLOYMENTS, "web").len(), 1);
    let w = store.get(DEPLOYMENTS, "default", "web").unwrap();
    assert_eq!((w["status"]["replicas"].as_u64(), w["status"]["observedGeneration"].as_u64()), (Some(1), Some(2)));
}

#[tokio::test(start_paused = true)]
async fn statefulset_pods_use_ordinals_and_scale_down_from_the_top() {
    let store = Store::new(1000);
    let _ctl = spawn(store.clone(), Duration::from_secs(1));
    store.create(&RESOURCES[STATEFULSETS], "default", deploy("db", 3), false).unwrap();
    settle(Duration::from_millis(1)).await;
    let mut names: Vec<String> =
        pods_of(&store, STATEFULSETS, "db").iter().map(|p| meta::name(p).to_string()).collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    set_replicas(&store, STATEFULSETS, "db", 1);
    settle(Duration::from_millis(1)).await;
    let names: Vec<String> = pods_of(&store, STATEFULSETS, "db").iter().map(|p| meta::name(p).to_string()).collect();
    assert_eq!(names, ["db-0"]);
}

#[tokio::test(start_paused = true)]
async fn deleting_a_workload_deletes_its_pods_and_deleted_pods_are_replaced() {
    let store = Store::new(1000);
    let _ctl = spawn(store.clone(), Duration::from_secs(1));
    store.create(&RESOURCES[REPLICASETS], "default", deploy("rs", 2), false).unwrap();
    settle(Duration::from_millis(1)).await;
    let pods = pods_of(&store, REPLICASETS, "rs");
    assert_eq!(pods.len(), 2);
    store.delete(&RESOURCES[PODS], "default", meta::name(&pods[0]), None, false).unwrap();
    settle(Duration::from_millis(1)).await;
    assert_eq!(pods_of(&store, REPLICASETS, "rs").len(), 2);
    store.delete(&RESOURCES[REPLICASETS], "default", "rs", None, false).unwrap();
    settle(Duration::from_millis(1)).await;
    assert_eq!(store.count(PODS), 0);
}

#[tokio::test(start_paused = true)]
async fn deployment_replicasets_carry_annotations_and_are_collected_with_the_deployment() {
    let store = Store::new(1000);
    let _ctl = spawn(store.clone(), Duration::from_secs(1));
    let mut d = deploy("web", 2);
    d["metadata"]["annotations"] = json!({"scalehub.io/enabled": "true"});
    store.create(&RESOURCES[DEPLOYMENTS], "default", d, false).unwrap();
    settle(Duration::from_secs(2)).await;
    let rs = store.list(REPLICASETS, None, &Default::default(), None, None).unwrap().items;
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0]["metadata"]["annotations"]["scalehub.io/enabled"], "true");
    assert_eq!(rs[0]["status"]["readyReplicas"], 2);
    let w = store.get(DEPLOYMENTS, "default", "web").unwrap();
    assert_eq!(w["status"]["readyReplicas"], 2);
    store.delete(&RESOURCES[DEPLOYMENTS], "default", "web", None, false).unwrap();
    settle(Duration::from_millis(1)).await;
    assert_eq!((store.count(REPLICASETS), store.count(PODS)), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_rollout_owns_its_pods_and_reports_argos_scale_status() {
    let store = Store::new(1000);
    let _ctl = spawn(store.clone(), Duration::from_secs(1));
    store.create(&RESOURCES[ROLLOUTS], "default", deploy("canary", 2), false).unwrap();
    settle(Duration::from_millis(1)).await;
    assert_eq!(pods_of(&store, ROLLOUTS, "canary").len(), 2);
    set_replicas(&store, ROLLOUTS, "canary", 3);
    settle(Duration::from_millis(1)).await;
    assert_eq!(pods_of(&store, ROLLOUTS, "canary").len(), 3);
    let rollout = store.get(ROLLOUTS, "default", "canary").unwrap();
    assert_eq!(rollout.pointer("/status/HPAReplicas").and_then(Value::as_u64), Some(3));
    assert_eq!(rollout.pointer("/status/selector").and_then(Value::as_str), Some("app=canary"));
    store.delete(&RESOURCES[ROLLOUTS], "default", "canary", None, false).unwrap();
    settle(Duration::from_millis(1)).await;
    assert_eq!(store.count(PODS), 0);
}

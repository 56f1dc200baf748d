use super::*;
use crate::resources::{DEPLOYMENTS, RESOURCES};
use crate::selector::Selectors;

fn deploy(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": {"replicas": 1}})
}

fn deployments() -> &'static ResourceDef {
    &RESOURCES[DEPLOYMENTS]
}

#[test]
fn create_sets_server_fields_and_rejects_duplicates() {
    let store = Store::new(100);
    let obj = store.create(deployments(), "default", deploy("web"), false).unwrap();
    assert_eq!(obj["metadata"]["generation"], 1);
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert_eq!(obj["kind"], "Deployment");
    assert!(obj["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert_eq!(meta::resource_version(&obj), Some(store.current_rv()));
    let err = store.create(deployments(), "default", deploy("web"), false).unwrap_err();
    assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
}

#[test]
fn create_in_a_missing_namespace_is_not_found() {
    let store = Store::new(100);
    let err = store.create(deployments(), "nope", deploy("web"), false).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (404, "namespaces \"nope\" not found"));
}

#[test]
fn generate_name_appends_a_suffix() {
    let store = Store::new(100);
    let obj = store.create(deployments(), "default", json!({"metadata": {"generateName": "web-"}}), false).unwrap();
    let name = meta::name(&obj);
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
}

#[test]
fn a_write_that_changes_nothing_keeps_the_resource_version_and_emits_nothing() {
    let store = Store::new(100);
    let obj = store.create(deployments(), "default", deploy("web"), false).unwrap();
    let rv = store.current_rv();
    let (same, _) = store
        .write(deployments(), "default", "web", WriteMode::Main, false, false, |o| Ok(o.unwrap().as_ref().clone()))
        .unwrap();
    assert_eq!(same, obj);
    assert_eq!(store.current_rv(), rv);
    assert!(store.events_since(DEPLOYMENTS, rv).unwrap().is_empty());
}

#[test]
fn spec_changes_bump_generation_but_label_changes_do_not() {
    let store = Store::new(100);
    store.create(deployments(), "default", deploy("web"), false).unwrap();
    let (o, _) = store
        .write(deployments(), "default", "web", WriteMode::Main, false, false, |o| {
            let mut v = o.unwrap().as_ref().clone();
            v["metadata"]["labels"]["x"] = json!("y");
            Ok(v)
        })
        .unwrap();
    assert_eq!(o["metadata"]["generation"], 1);
    let (o, _) = store
        .write(deployments(), "default", "web", WriteMode::Main, false, false, |o| {
            let mut v = o.unwrap().as_ref().clone();
            v["spec"]["replicas"] = json!(4);
            Ok(v)
        })
        .unwrap();
    assert_eq!(o["metadata"]["generation"], 2);
}

#[test]
fn status_writes_change_only_status() {
    let store = Store::new(100);
    store.create(deployments(), "default", deploy("web"), false).unwrap();
    let (o, _) = store
        .write(deployments(), "default", "web", WriteMode::Status, false, false, |o| {
            let mut v = o.unwrap().as_ref().clone();
            v["spec"]["replicas"] = json!(9);
            v["status"] = json!({"replicas": 1});
            Ok(v)
        })
        .unwrap();
    assert_eq!((o["spec"]["replicas"].as_i64(), o["status"]["replicas"].as_i64()), (Some(1), Some(1)));
    let (o, _) = store
        .write(deployments(), "default", "web", WriteMode::Main, false, false, |o| {
            let mut v = o.unwrap().as_ref().clone();
            v["status"] = json!({"replicas": 5});
            Ok(v)
        })
        .unwrap();
    assert_eq!(o["status"]["replicas"], 1);
}

#[test]
fn delete_emits_an_event_with_a_fresh_resource_version() {
    let store = Store::new(100);
    store.create(deployments(), "default", deploy("web"), false).unwrap();
    let before = store.current_rv();
    let gone = store.delete(deployments(), "default", "web", None, false).unwrap();
    let events = store.events_since(DEPLOYMENTS, before).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventType::Deleted);
    assert_eq!(meta::resource_version(&events[0].object), Some(before + 1));
    assert_eq!(meta::resource_version(&gone), Some(before + 1));
    assert!(store.get(DEPLOYMENTS, "default", "web").is_none());
}

#[test]
fn history_beyond_the_limit_is_expired() {
    let store = Store::new(16);
    let start = store.current_rv();
    for i in 0..40 {
        store.create(deployments(), "default", deploy(&format!("w{i}")), false).unwrap();
    }
    let err = store.events_since(DEPLOYMENTS, start).unwrap_err();
    assert_eq!(err.requested, start);
    let recent = store.current_rv() - 5;
    assert_eq!(store.events_since(DEPLOYMENTS, recent).unwrap().len(), 5);
}

#[test]
fn lists_page_with_continue_tokens() {
    let store = Store::new(100);
    store.create(&RESOURCES[NAMESPACES], "", json!({"metadata": {"name": "other"}}), false).unwrap();
    for i in 0..5 {
        store.create(deployments(), "default", deploy(&format!("w{i}")), false).unwrap();
        store.create(deployments(), "other", deploy(&format!("w{i}")), false).unwrap();
    }
    let sel = Selectors::default();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list(DEPLOYMENTS, None, &sel, Some(3), token.as_deref()).unwrap();
        seen.extend(
            page.items.iter().map(|o| format!("{}/{}", meta::meta_str(o, "namespace").unwrap(), meta::name(o))),
        );
        match page.continue_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10);
    assert_eq!(seen[0], "default/w0");
    assert_eq!(seen[9], "other/w4");
}

#[test]
fn pods_are_indexed_by_controller_owner() {
    let store = Store::new(100);
    let pod = json!({"metadata": {"name": "p1", "ownerReferences": [{"uid": "u1", "controller": true, "kind": "Deployment", "name": "web"}]}});
    store.create(&RESOURCES[PODS], "default", pod, false).unwrap();
    assert_eq!(store.pods_owned_by("default", "u1").len(), 1);
    store.delete(&RESOURCES[PODS], "default", "p1", None, false).unwrap();
    assert!(store.pods_owned_by("default", "u1").is_empty());
}

#[test]
fn deleting_a_namespace_deletes_its_objects() {
    let store = Store::new(100);
    store.create(&RESOURCES[NAMESPACES], "", json!({"metadata": {"name": "tmp"}}), false).unwrap();
    store.create(deployments(), "tmp", deploy("web"), false).unwrap();
    store.delete(&RESOURCES[NAMESPACES], "", "tmp", None, false).unwrap();
    assert!(store.get(DEPLOYMENTS, "tmp", "web").is_none());
}

#[test]
fn pod_lists_by_label_use_the_index_and_follow_label_changes() {
    let store = Store::new(100);
    for (name, app) in [("a", "web"), ("b", "api"), ("c", "web")] {
        store
            .create(&RESOURCES[PODS], "default", json!({"metadata": {"name": name, "labels": {"app": app}}}), false)
            .unwrap();
    }
    let sel = |s: &str| Selectors { labels: crate::selector::LabelSelector::parse(s).unwrap(), ..Default::default() };
    let names = |p: ListPage| p.items.iter().map(|o| meta::name(o).to_string()).collect::<Vec<_>>();
    assert_eq!(names(store.list(PODS, Some("default"), &sel("app=web"), None, None).unwrap()), ["a", "c"]);
    let first = store.list(PODS, None, &sel("app=web"), Some(1), None).unwrap();
    let token = first.continue_token.clone().unwrap();
    assert_eq!(names(store.list(PODS, None, &sel("app=web"), Some(1), Some(&token)).unwrap()), ["c"]);
    store
        .write(&RESOURCES[PODS], "default", "a", WriteMode::Main, false, false, |o| {
            let mut v = o.unwrap().as_ref().clone();
            v["metadata"]["labels"]["app"] = json!("api");
            Ok(v)
        })
        .unwrap();
    assert_eq!(names(store.list(PODS, None, &sel("app=web,app!=x"), None, None).unwrap()), ["c"]);
    assert_eq!(names(store.list(PODS, None, &sel("app in (api)"), None, None).unwrap()), ["a", "b"]);
    assert!(store.list(PODS, Some("other"), &sel("app=web"), None, None).unwrap().items.is_empty());
}

#[test]
fn every_page_of_a_paged_list_reports_the_first_pages_version_so_a_watch_replays_what_changed() {
    let store = Store::new(100);
    for i in 0..4 {
        store.create(deployments(), "default", deploy(&format!("w{i}")), false).unwrap();
    }
    let sel = Selectors::default();
    let first = store.list(DEPLOYMENTS, Some("default"), &sel, Some(2), None).unwrap();
    // An object of the first page changes before the second page is read.
    store
        .write(deployments(), "default", "w0", WriteMode::Main, false, false, |o| {
            let mut v = o.unwrap().as_ref().clone();
            v["spec"]["replicas"] = json!(7);
            Ok(v)
        })
        .unwrap();
    let token = first.continue_token.clone().unwrap();
    let second = store.list(DEPLOYMENTS, Some("default"), &sel, Some(2), Some(&token)).unwrap();
    assert_eq!(second.rv, first.rv, "the second page reports a later version: the update of w0 would be lost");
    let events = store.events_since(DEPLOYMENTS, second.rv).unwrap();
    assert!(
        events.iter().any(|e| meta::name(&e.object) == "w0"),
        "a watch from the list's version does not replay the update of w0"
    );
}

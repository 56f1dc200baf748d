//! The four patch content types: JSON merge (RFC 7386), strategic merge, JSON patch (RFC 6902)
//! and server-side apply (approximated by strategic merge of the applied configuration).

use serde_json::{Map, Value};

/// A patch failure, mapped to the status code the real server uses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatchError {
    /// The patch body cannot be decoded (400).
    #[error("{0}")]
    Decode(String),
    /// The patch cannot be applied, e.g. a failed JSON patch `test` (422).
    #[error("{0}")]
    Apply(String),
}

/// Patch content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchKind {
    /// The kind for a Content-Type header (parameters ignored); None for unsupported types.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/json-patch+json" => Some(Self::Json),
            "application/apply-patch+yaml" | "application/apply-patch+json" | "application/apply-patch+cbor" => {
                Some(Self::Apply)
            }
            _ => None,
        }
    }
}

/// Parses a body that may be JSON or YAML (apply bodies; kubectl sends JSON, users may send YAML).
pub fn parse_json_or_yaml(body: &[u8]) -> Result<Value, PatchError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body).map_err(|e| PatchError::Decode(format!("body is not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| PatchError::Decode(format!("error decoding YAML: {e}")))
}

/// Applies a patch body to `target` and returns the patched object.
pub fn apply_patch(kind: PatchKind, target: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let mut doc = target.clone();
    match kind {
        PatchKind::Merge => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| PatchError::Decode(e.to_string()))?;
            json_patch::merge(&mut doc, &patch);
        }
        PatchKind::Strategic => {
            let patch: Value = serde_json::from_slice(body).map_err(|e| PatchError::Decode(e.to_string()))?;
            strategic_merge(&mut doc, &patch);
        }
        PatchKind::Json => {
            let patch: json_patch::Patch =
                serde_json::from_slice(body).map_err(|e| PatchError::Decode(e.to_string()))?;
            json_patch::patch(&mut doc, &patch).map_err(|e| PatchError::Apply(e.to_string()))?;
        }
        PatchKind::Apply => {
            let mut patch = parse_json_or_yaml(body)?;
            if let Some(m) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
            strategic_merge(&mut doc, &patch);
        }
    }
    Ok(doc)
}

/// Strategic merge: JSON merge, except that known lists merge element-wise by their merge key,
/// `finalizers` merge as a set, and `$patch`/`$setElementOrder`/`$retainKeys` directives are honoured
/// or dropped.
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    let Some(pmap) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    match pmap.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *target = strip_directives(patch);
            return;
        }
        Some("delete") => {
            *target = Value::Null;
            return;
        }
        _ => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(tmap) = target.as_object_mut() else { return };
    for (key, pval) in pmap {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (tmap.get_mut(field).and_then(Value::as_array_mut), pval.as_array()) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        match pval {
            Value::Null => {
                tmap.remove(key);
            }
            Value::Object(_) => {
                let slot = tmap.entry(key.clone()).or_insert(Value::Null);
                strategic_merge(slot, pval);
                if slot.is_null() {
                    tmap.remove(key);
                }
            }
            Value::Array(items) => {
                let merged = match (tmap.get(key).and_then(Value::as_array), list_strategy(key, items)) {
                    (Some(existing), ListStrategy::ByKey(mk)) => merge_by_key(existing, items, mk),
                    (Some(existing), ListStrategy::Set) => {
                        let mut out = existing.clone();
                        out.extend(items.iter().filter(|i| !existing.contains(i)).cloned());
                        out
                    }
                    _ => items.iter().filter(|i| !is_delete_directive(i)).map(strip_directives).collect(),
                };
                tmap.insert(key.clone(), Value::Array(merged));
            }
            other => {
                tmap.insert(key.clone(), other.clone());
            }
        }
    }
}

enum ListStrategy {
    ByKey(&'static str),
    Set,
    Replace,
}

/// Merge strategies of the Kubernetes types scalehub and kubectl touch.
fn list_strategy(field: &str, items: &[Value]) -> ListStrategy {
    match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => {
            ListStrategy::ByKey("name")
        }
        "volumeMounts" => ListStrategy::ByKey("mountPath"),
        "volumeDevices" => ListStrategy::ByKey("devicePath"),
        "ports" if items.iter().any(|i| i.get("containerPort").is_some()) => ListStrategy::ByKey("containerPort"),
        "ports" => ListStrategy::ByKey("port"),
        "conditions" => ListStrategy::ByKey("type"),
        "ownerReferences" => ListStrategy::ByKey("uid"),
        "hostAliases" => ListStrategy::ByKey("ip"),
        "finalizers" => ListStrategy::Set,
        _ => ListStrategy::Replace,
    }
}

fn is_delete_directive(item: &Value) -> bool {
    item.get("$patch").and_then(Value::as_str) == Some("delete")
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter().filter(|(k, _)| !k.starts_with('$')).map(|(k, v)| (k.clone(), strip_directives(v))).collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

fn merge_by_key(existing: &[Value], patch: &[Value], key: &str) -> Vec<Value> {
    let mut out = existing.to_vec();
    for item in patch {
        let Some(k) = item.get(key) else {
            out.push(strip_directives(item));
            continue;
        };
        let pos = out.iter().position(|e| e.get(key) == Some(k));
        match (pos, is_delete_directive(item)) {
            (Some(i), true) => {
                out.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge(&mut out[i], item),
            (None, false) => out.push(strip_directives(item)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy() -> Value {
        json!({
            "metadata": {"name": "web", "labels": {"app": "web", "old": "x"}, "finalizers": ["a"]},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "side:1"}
            ]}}}
        })
    }

    #[test]
    fn merge_patch_replaces_lists_and_deletes_nulls() {
        let body = br#"{"metadata":{"labels":{"old":null}},"spec":{"template":{"spec":{"containers":[{"name":"app","image":"app:2"}]}}}}"#;
        let out = apply_patch(PatchKind::Merge, &deploy(), body).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "app", "image": "app:2"}]));
    }

    #[test]
    fn strategic_merge_merges_containers_by_name() {
        let body = br#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"app:2","env":[{"name":"B","value":"2"}]}]}}}}"#;
        let out = apply_patch(PatchKind::Strategic, &deploy(), body).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2);
        assert_eq!(cs[0]["image"], "app:2");
        assert_eq!(cs[0]["env"], json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]));
        assert_eq!(cs[0]["ports"], json!([{"containerPort": 80}]));
        assert_eq!(cs[1]["image"], "side:1");
    }

    #[test]
    fn strategic_merge_honours_delete_directives_and_drops_element_order() {
        let body = br#"{"metadata":{"finalizers":["b"]},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"}],"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#;
        let out = apply_patch(PatchKind::Strategic, &deploy(), body).unwrap();
        let cs = out["spec"]["template"]["spec"]["containers"].as_array().unwrap().clone();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["name"], "app");
        assert!(out["spec"]["template"]["spec"].get("$setElementOrder/containers").is_none());
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
    }

    #[test]
    fn json_patch_applies_operations_and_fails_on_test_mismatch() {
        let ok =
            br#"[{"op":"test","path":"/spec/replicas","value":2},{"op":"replace","path":"/spec/replicas","value":5}]"#;
        assert_eq!(apply_patch(PatchKind::Json, &deploy(), ok).unwrap()["spec"]["replicas"], 5);
        let bad = br#"[{"op":"test","path":"/spec/replicas","value":3}]"#;
        assert!(matches!(apply_patch(PatchKind::Json, &deploy(), bad), Err(PatchError::Apply(_))));
        assert!(matches!(apply_patch(PatchKind::Json, &deploy(), b"{}"), Err(PatchError::Decode(_))));
    }

    #[test]
    fn apply_accepts_yaml_bodies() {
        let body = b"metadata:\n  labels:\n    tier: fe\nspec:\n  replicas: 3\n";
        let out = apply_patch(PatchKind::Apply, &deploy(), body).unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["metadata"]["labels"]["tier"], "fe");
        assert_eq!(out["metadata"]["labels"]["app"], "web");
    }

    #[test]
    fn content_types_map_to_patch_kinds() {
        assert_eq!(PatchKind::from_content_type("application/merge-patch+json; charset=utf-8"), Some(PatchKind::Merge));
        assert_eq!(PatchKind::from_content_type("application/apply-patch+yaml"), Some(PatchKind::Apply));
        assert_eq!(PatchKind::from_content_type("application/json"), None);
    }
}

//! A small model of server-side apply field ownership: each Apply manager owns the leaf fields
//! of its last applied configuration (recorded in `metadata.managedFields` as FieldsV1); applying
//! a different value to a field another Apply manager owns is a 409 Conflict unless forced.
//!
//! Simplifications: lists are owned whole, and only Apply operations are tracked (a real server
//! also records Update managers such as `kubectl scale`).

use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::meta;
use crate::resources::ResourceDef;

type Path = Vec<String>;

/// Leaf paths of an applied configuration, without type and identity fields.
fn leaf_paths(v: &Value, prefix: &mut Path, out: &mut Vec<Path>) {
    match v.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, child) in map {
                let skip = match prefix.as_slice() {
                    [] => matches!(k.as_str(), "apiVersion" | "kind" | "status"),
                    [m] if m == "metadata" => !matches!(k.as_str(), "labels" | "annotations"),
                    _ => false,
                };
                if skip {
                    continue;
                }
                prefix.push(k.clone());
                leaf_paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.push(prefix.clone());
            }
        }
    }
}

/// FieldsV1 (`{"f:spec":{"f:replicas":{}}}`) for a set of paths.
fn to_fields_v1(paths: &[Path]) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut node = &mut root;
        for seg in p {
            let Some(next) = node.entry(format!("f:{seg}")).or_insert_with(|| json!({})).as_object_mut() else { break };
            node = next;
        }
    }
    Value::Object(root)
}

/// Paths of a FieldsV1 value (leaves are empty objects).
fn from_fields_v1(v: &Value, prefix: &mut Path, out: &mut Vec<Path>) {
    let Some(map) = v.as_object() else { return };
    let mut leaf = true;
    for (k, child) in map {
        if let Some(seg) = k.strip_prefix("f:") {
            leaf = false;
            prefix.push(seg.to_string());
            from_fields_v1(child, prefix, out);
            prefix.pop();
        }
    }
    if leaf && !prefix.is_empty() {
        out.push(prefix.clone());
    }
}

fn value_at<'a>(obj: &'a Value, path: &Path) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, seg| v.get(seg))
}

/// Checks ownership conflicts for an apply by `manager` and records its fields in `patched`.
pub(crate) fn record_apply(
    def: &ResourceDef,
    old: Option<&Value>,
    patched: &mut Value,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<(), ApiError> {
    let mut mine = Vec::new();
    leaf_paths(applied, &mut Vec::new(), &mut mine);
    let mut entries: Vec<Value> =
        old.and_then(|o| o.pointer("/metadata/managedFields")).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut conflicts: Vec<String> = Vec::new();
    for entry in entries.iter_mut() {
        let owner = entry.get("manager").and_then(Value::as_str).unwrap_or("").to_string();
        if owner == manager || entry.get("operation").and_then(Value::as_str) != Some("Apply") {
            continue;
        }
        let mut owned = Vec::new();
        from_fields_v1(entry.get("fieldsV1").unwrap_or(&Value::Null), &mut Vec::new(), &mut owned);
        let contested: Vec<Path> = owned
            .iter()
            .filter(|p| mine.contains(p) && old.and_then(|o| value_at(o, p)) != value_at(applied, p))
            .cloned()
            .collect();
        if contested.is_empty() {
            continue;
        }
        if force {
            owned.retain(|p| !contested.contains(p));
            entry["fieldsV1"] = to_fields_v1(&owned);
        } else {
            conflicts.extend(contested.iter().map(|p| format!("conflict with \"{owner}\": .{}", p.join("."))));
        }
    }
    if !conflicts.is_empty() {
        let name = meta::name(patched).to_string();
        let msg = format!(
            "Apply failed with {} conflict{}: {}",
            conflicts.len(),
            if conflicts.len() == 1 { "" } else { "s" },
            conflicts.join("\n")
        );
        let mut err = ApiError::conflict(def.group, def.plural, &name);
        err.message = msg;
        return Err(err);
    }
    let fields = to_fields_v1(&mine);
    match entries.iter_mut().find(|e| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some("Apply")
    }) {
        // Unchanged ownership keeps the old entry (and its time), so a no-op apply stays a no-op.
        Some(e) if e.get("fieldsV1") == Some(&fields) => {}
        Some(e) => {
            e["fieldsV1"] = fields;
            e["time"] = json!(meta::now_rfc3339());
        }
        None => entries.push(json!({
            "manager": manager, "operation": "Apply", "apiVersion": def.api_version(),
            "time": meta::now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": fields,
        })),
    }
    entries.retain(|e| e.get("fieldsV1").is_some_and(|f| f.as_object().is_some_and(|m| !m.is_empty())));
    patched["metadata"]["managedFields"] = Value::Array(entries);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{DEPLOYMENTS, RESOURCES};

    fn cfg(replicas: u64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": replicas}})
    }

    #[test]
    fn a_second_manager_conflicts_unless_forced() {
        let def = &RESOURCES[DEPLOYMENTS];
        let mut first = cfg(1);
        record_apply(def, None, &mut first, &cfg(1), "first", false).unwrap();
        assert_eq!(first["metadata"]["managedFields"][0]["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        let mut second = first.clone();
        let err = record_apply(def, Some(&first), &mut second, &cfg(3), "second", false).unwrap_err();
        assert_eq!(err.code, 409);
        assert!(err.message.contains("conflict with \"first\": .spec.replicas"), "{}", err.message);
        record_apply(def, Some(&first), &mut second, &cfg(3), "second", true).unwrap();
        let managers: Vec<&str> = second["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["second"]);
    }

    #[test]
    fn applying_the_same_value_is_shared_ownership_not_a_conflict() {
        let def = &RESOURCES[DEPLOYMENTS];
        let mut first = cfg(2);
        record_apply(def, None, &mut first, &cfg(2), "first", false).unwrap();
        let mut second = first.clone();
        record_apply(def, Some(&first), &mut second, &cfg(2), "second", false).unwrap();
        assert_eq!(second["metadata"]["managedFields"].as_array().unwrap().len(), 2);
    }
}

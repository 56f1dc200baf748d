//! Conversion between versions that share storage, as the real server converts on read:
//! core/v1 Events ↔ events.k8s.io/v1 Events, autoscaling/v1 ↔ autoscaling/v2 HPAs.

use serde_json::{Map, Value, json};

use crate::resources::ResourceDef;

/// Field renames from core/v1 Event to events.k8s.io/v1 Event.
const EVENT_FIELDS: [(&str, &str); 8] = [
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("reportingComponent", "reportingController"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingInstance", "reportingInstance"),
];

/// Rewrites `obj` (stored in another version of the same resource) into `def`'s version.
pub(crate) fn convert(def: &ResourceDef, obj: &mut Value) {
    let from = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string();
    let Some(map) = obj.as_object_mut() else { return };
    match (def.kind, from.as_str(), def.api_version().as_str()) {
        ("Event", "v1", "events.k8s.io/v1") => rename(map, EVENT_FIELDS.iter().map(|(a, b)| (*a, *b))),
        ("Event", "events.k8s.io/v1", "v1") => rename(map, EVENT_FIELDS.iter().map(|(a, b)| (*b, *a))),
        ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => hpa_v2_to_v1(map),
        ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => hpa_v1_to_v2(map),
        _ => {}
    }
}

fn rename<'a>(map: &mut Map<String, Value>, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    for (from, to) in pairs {
        if let Some(v) = map.remove(from) {
            map.insert(to.to_string(), v);
        }
    }
}

fn is_cpu(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
}

fn hpa_v2_to_v1(map: &mut Map<String, Value>) {
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut) {
        let target = spec.remove("metrics").and_then(|ms| {
            ms.as_array()?.iter().find(|m| is_cpu(m))?.pointer("/resource/target/averageUtilization").cloned()
        });
        if let Some(t) = target {
            spec.insert("targetCPUUtilizationPercentage".into(), t);
        }
        spec.remove("behavior");
    }
    if let Some(status) = map.get_mut("status").and_then(Value::as_object_mut) {
        let current = status.remove("currentMetrics").and_then(|ms| {
            ms.as_array()?.iter().find(|m| is_cpu(m))?.pointer("/resource/current/averageUtilization").cloned()
        });
        if let Some(c) = current {
            status.insert("currentCPUUtilizationPercentage".into(), c);
        }
        status.remove("conditions");
    }
}

fn hpa_v1_to_v2(map: &mut Map<String, Value>) {
    if let Some(spec) = map.get_mut("spec").and_then(Value::as_object_mut)
        && let Some(t) = spec.remove("targetCPUUtilizationPercentage")
    {
        spec.insert("metrics".into(), json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": t}}}]));
    }
    if let Some(status) = map.get_mut("status").and_then(Value::as_object_mut)
        && let Some(c) = status.remove("currentCPUUtilizationPercentage")
    {
        status.insert(
            "currentMetrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;

    #[test]
    fn hpa_cpu_targets_convert_both_ways() {
        let mut v2 = json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 5, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}]}});
        convert(&RESOURCES[9], &mut v2);
        assert_eq!(v2["spec"]["targetCPUUtilizationPercentage"], 60);
        v2["apiVersion"] = json!("autoscaling/v1");
        convert(&RESOURCES[8], &mut v2);
        assert_eq!(v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 60);
    }

    #[test]
    fn events_rename_their_fields_between_groups() {
        let mut e = json!({"apiVersion": "events.k8s.io/v1", "regarding": {"name": "web"}, "note": "scaled", "reportingController": "scalehub"});
        convert(&RESOURCES[5], &mut e);
        assert_eq!(
            (e["involvedObject"]["name"].as_str(), e["message"].as_str(), e["reportingComponent"].as_str()),
            (Some("web"), Some("scaled"), Some("scalehub"))
        );
    }
}

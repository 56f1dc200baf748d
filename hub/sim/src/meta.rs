//! Small helpers over object metadata shared by the store, handlers and controllers.

use rand::Rng;
use serde_json::{Map, Value};

/// Characters the real server uses for generated name suffixes (no vowels, no look-alikes).
const SUFFIX_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// A random suffix like `x7k2q`, as in `generateName` and ReplicaSet pod names.
pub fn random_suffix(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| SUFFIX_CHARS[rng.random_range(0..SUFFIX_CHARS.len())] as char).collect()
}

/// A stable 10-character hash in the suffix alphabet, like `pod-template-hash`.
pub fn short_hash(text: &str) -> String {
    // FNV-1a: stable across runs and platforms, unlike std's randomly seeded hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..10)
        .map(|_| {
            let c = SUFFIX_CHARS[(h % SUFFIX_CHARS.len() as u64) as usize] as char;
            h /= SUFFIX_CHARS.len() as u64;
            c
        })
        .collect()
}

/// A random v4-style UUID string.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::rng().random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

/// The current time as RFC 3339 with second precision (`metav1.Time`).
pub fn now_rfc3339() -> String {
    let ts = jiff::Timestamp::now();
    jiff::Timestamp::from_second(ts.as_second()).map(|t| t.to_string()).unwrap_or_else(|_| ts.to_string())
}

/// The current time with microseconds (`metav1.MicroTime`).
pub fn now_micro() -> String {
    let ts = jiff::Timestamp::now();
    format!("{ts:.6}")
}

/// `metadata` of an object, created if absent; None when the object is not a JSON object.
pub fn metadata_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let meta = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// `metadata.name` or "".
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

/// `metadata.resourceVersion` parsed, if any.
pub fn resource_version(obj: &Value) -> Option<u64> {
    meta_str(obj, "resourceVersion").and_then(|rv| rv.parse().ok())
}

/// The uid of the controlling owner (`ownerReferences[].controller == true`).
pub fn controller_uid(obj: &Value) -> Option<&str> {
    controller_ref(obj).and_then(|r| r.get("uid")).and_then(Value::as_str)
}

/// The controlling owner reference.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.pointer("/metadata/ownerReferences")?
        .as_array()?
        .iter()
        .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
}

/// An annotation value.
pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// Whether a name is a valid DNS-1123 subdomain (what most resources require).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Whether a pod is Ready (`status.conditions[type=Ready].status == "True"`).
pub fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
        cs.iter().any(|c| {
            c.get("type").and_then(Value::as_str) == Some("Ready")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_look_like_v4_uuids() {
        let uid = new_uid();
        assert_eq!(uid.len(), 36);
        assert_eq!(&uid[14..15], "4");
        assert_ne!(uid, new_uid());
    }

    #[test]
    fn timestamps_have_second_precision() {
        let ts = now_rfc3339();
        assert!(ts.ends_with('Z') && !ts.contains('.'), "{ts}");
        assert!(now_micro().contains('.'));
    }

    #[test]
    fn names_follow_dns_subdomain_rules() {
        assert!(valid_name("web-1.a"));
        assert!(!valid_name("Web"));
        assert!(!valid_name("-web"));
        assert!(!valid_name(""));
    }
}

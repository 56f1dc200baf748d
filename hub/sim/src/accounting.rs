//! Request accounting: counts by verb and resource, so benchmarks can measure the hub's API load.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::{Value, json};

/// Request counters keyed by (verb, resource label such as `deployments/scale`).
#[derive(Debug, Default)]
pub struct Accounting {
    counts: Mutex<BTreeMap<(String, String), u64>>,
    /// Who wrote each object's `/scale` (`namespace/plural/name` → the writers' User-Agents),
    /// so a test of sharded hubs can tell that each target was scaled by one hub.
    scale_writers: Mutex<BTreeMap<String, BTreeSet<String>>>,
}

impl Accounting {
    /// Counts one request.
    pub fn record(&self, verb: &str, resource: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        match counts.get_mut(&(verb.to_string(), resource.to_string())) {
            Some(n) => *n += 1,
            None => {
                counts.insert((verb.to_string(), resource.to_string()), 1);
            }
        }
    }

    /// Counts a write of `object`'s `/scale` by the client that calls itself `user_agent`.
    pub fn record_scale_write(&self, object: &str, user_agent: &str) {
        let mut writers = self.scale_writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.entry(object.to_owned()).or_default().insert(user_agent.to_owned());
    }

    /// Who wrote each object's `/scale` since the last reset.
    pub fn scale_writers(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.scale_writers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The count for one verb and resource.
    pub fn count(&self, verb: &str, resource: &str) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&(verb.to_string(), resource.to_string())).copied().unwrap_or(0)
    }

    /// The total over all verbs and resources.
    pub fn total(&self) -> u64 {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }

    /// Clears every counter.
    pub fn reset(&self) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.scale_writers.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// `{"total": N, "byVerb": {...}, "byResource": {...}, "counts": {"patch": {"deployments/scale": 3}}}`.
    pub fn snapshot(&self) -> Value {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut nested: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        let mut by_verb: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_resource: BTreeMap<&str, u64> = BTreeMap::new();
        for ((verb, res), n) in counts.iter() {
            nested.entry(verb).or_default().insert(res, *n);
            *by_verb.entry(verb).or_default() += n;
            *by_resource.entry(res).or_default() += n;
        }
        let writers = self.scale_writers();
        json!({
            "total": counts.values().sum::<u64>(),
            "byVerb": by_verb,
            "byResource": by_resource,
            "counts": nested,
            "scaleWriters": writers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_accumulate_per_verb_and_resource_and_reset() {
        let a = Accounting::default();
        a.record("patch", "deployments/scale");
        a.record("patch", "deployments/scale");
        a.record("list", "pods");
        assert_eq!(a.count("patch", "deployments/scale"), 2);
        let snap = a.snapshot();
        assert_eq!(snap["total"], 3);
        assert_eq!(snap["counts"]["patch"]["deployments/scale"], 2);
        assert_eq!(snap["byVerb"]["list"], 1);
        a.record_scale_write("shop/deployments/web", "scalehub/0.1.0 (hub-a)");
        a.record_scale_write("shop/deployments/web", "scalehub/0.1.0 (hub-a)");
        assert_eq!(a.snapshot()["scaleWriters"]["shop/deployments/web"], json!(["scalehub/0.1.0 (hub-a)"]));
        a.reset();
        assert_eq!(a.total(), 0);
        assert!(a.scale_writers().is_empty());
    }
}

//! Listing: paging over (namespace, name) order, and the pod label index.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use serde_json::Value;

use super::{ListPage, Obj, Store};
use crate::error::ApiError;
use crate::resources::PODS;
use crate::selector::Selectors;

impl Store {
    /// Lists objects (all namespaces when `ns` is None) with selectors and paging.
    ///
    /// Every page of one paged list reports the resourceVersion of its first page, as a real
    /// API server does (it serves the pages from that snapshot). A client starts its watch
    /// from that version, so the events after the first page — updates of objects it already
    /// received — are replayed to it; reporting the version of the last page instead loses
    /// them (a watcher would keep those objects stale for good). The simulator serves later
    /// pages from the current state rather than the snapshot: the replay brings the client
    /// to the same end.
    pub fn list(
        &self,
        slot: usize,
        ns: Option<&str>,
        sel: &Selectors,
        limit: Option<usize>,
        cont: Option<&str>,
    ) -> Result<ListPage, ApiError> {
        let (snapshot, start) = match cont.filter(|c| !c.is_empty()) {
            Some(token) => {
                let (rv, ns, name) = parse_continue(token)?;
                (Some(rv), Some((ns, name)))
            }
            None => (None, None),
        };
        let inner = self.lock();
        let rv = snapshot.unwrap_or(inner.rv);
        let objects = &inner.slots[slot].objects;
        let limit = limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        if slot == PODS
            && let Some((k, v)) = sel.labels.first_equality()
        {
            let empty = BTreeSet::new();
            let keys = inner.slots[slot].labels.get(&(k.to_string(), v.to_string())).unwrap_or(&empty);
            let lower = match &start {
                Some((sns, sname)) => Bound::Excluded((sns.clone(), sname.clone())),
                None => Bound::Unbounded,
            };
            let mut items = Vec::new();
            let mut more = false;
            let mut last: Option<&(String, String)> = None;
            for key in keys.range((lower, Bound::Unbounded)) {
                if ns.is_some_and(|ns| ns != key.0) {
                    continue;
                }
                let Some(obj) = objects.get(&key.0).and_then(|o| o.get(&key.1)) else { continue };
                if !sel.matches(obj) {
                    continue;
                }
                if items.len() == limit {
                    more = true;
                    break;
                }
                items.push(obj.clone());
                last = Some(key);
            }
            let continue_token = match (more, last) {
                (true, Some((ns, name))) => Some(format!("{rv}/{ns}/{name}")),
                _ => None,
            };
            return Ok(ListPage { items, rv, continue_token });
        }
        let mut items = Vec::new();
        let mut last: Option<(&str, &str)> = None;
        let mut more = false;
        let ns_range: Box<dyn Iterator<Item = (&String, &BTreeMap<String, Obj>)>> = match (ns, &start) {
            (Some(ns), _) => Box::new(objects.get_key_value(ns).into_iter()),
            (None, Some((sns, _))) => {
                Box::new(objects.range::<str, _>((Bound::Included(sns.as_str()), Bound::Unbounded)))
            }
            (None, None) => Box::new(objects.iter()),
        };
        'outer: for (ns_name, by_name) in ns_range {
            let names: Box<dyn Iterator<Item = (&String, &Obj)>> = match &start {
                Some((sns, sname)) if sns == ns_name => {
                    Box::new(by_name.range::<str, _>((Bound::Excluded(sname.as_str()), Bound::Unbounded)))
                }
                Some((sns, _)) if sns > ns_name => continue,
                _ => Box::new(by_name.iter()),
            };
            for (name, obj) in names {
                if !sel.is_empty() && !sel.matches(obj) {
                    continue;
                }
                if items.len() == limit {
                    more = true;
                    break 'outer;
                }
                items.push(obj.clone());
                last = Some((ns_name, name));
            }
        }
        let continue_token = match (more, last) {
            (true, Some((ns, name))) => Some(format!("{rv}/{ns}/{name}")),
            _ => None,
        };
        Ok(ListPage { items, rv, continue_token })
    }
}

/// Moves an object's entries in the label index from its old labels to its new ones.
pub(super) fn index_labels(
    index: &mut HashMap<(String, String), BTreeSet<(String, String)>>,
    ns: &str,
    name: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) {
    let labels = |o: Option<&Value>| -> Vec<(String, String)> {
        o.and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
            .unwrap_or_default()
    };
    let (old, new) = (labels(old), labels(new));
    if old == new {
        return;
    }
    let key = (ns.to_string(), name.to_string());
    for l in old.iter().filter(|l| !new.contains(l)) {
        if let Some(set) = index.get_mut(l) {
            set.remove(&key);
            if set.is_empty() {
                index.remove(l);
            }
        }
    }
    for l in new.into_iter().filter(|l| !old.contains(l)) {
        index.entry(l).or_default().insert(key.clone());
    }
}

/// Continue tokens are `rv/namespace/name`: the first page's resourceVersion and the last
/// returned item.
fn parse_continue(token: &str) -> Result<(u64, String, String), ApiError> {
    let mut parts = token.splitn(3, '/');
    match (parts.next().and_then(|rv| rv.parse::<u64>().ok()), parts.next(), parts.next()) {
        (Some(rv), Some(ns), Some(name)) => Ok((rv, ns.to_string(), name.to_string())),
        _ => Err(ApiError::bad_request(format!("invalid continue token {token:?}"))),
    }
}

//! Helpers for reading raw watch streams in tests.

use std::fmt::Debug;

use anyhow::{Context as _, bail};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use serde::de::DeserializeOwned;

use crate::server::within;

/// A boxed raw watch stream.
pub type Events<K> = BoxStream<'static, kube::Result<WatchEvent<K>>>;

/// Opens a watch from `rv`.
pub async fn watch_from<K>(api: &Api<K>, wp: &WatchParams, rv: &str) -> anyhow::Result<Events<K>>
where
    K: Clone + DeserializeOwned + Debug + Send + 'static,
{
    let stream = within("the watch to open", api.watch(wp, rv))
        .await?
        .with_context(|| format!("open watch from resourceVersion {rv}"))?;
    Ok(stream.boxed())
}

/// The resourceVersion of a list of `api`, where a watch should start.
pub async fn list_rv<K>(api: &Api<K>, lp: &ListParams) -> anyhow::Result<String>
where
    K: Clone + DeserializeOwned + Debug,
{
    let list = within("list", api.list(lp)).await?.context("list")?;
    list.metadata.resource_version.filter(|rv| !rv.is_empty()).context("list has no metadata.resourceVersion")
}

/// A short description of an event, for failure messages.
pub fn describe<K: ResourceExt>(ev: &WatchEvent<K>) -> String {
    match ev {
        WatchEvent::Added(o) => format!("ADDED {} rv={}", o.name_any(), o.resource_version().unwrap_or_default()),
        WatchEvent::Modified(o) => {
            format!("MODIFIED {} rv={}", o.name_any(), o.resource_version().unwrap_or_default())
        }
        WatchEvent::Deleted(o) => {
            format!("DELETED {} rv={}", o.name_any(), o.resource_version().unwrap_or_default())
        }
        WatchEvent::Bookmark(b) => format!("BOOKMARK rv={}", b.metadata.resource_version),
        WatchEvent::Error(s) => format!("ERROR {s:?}"),
    }
}

/// Reads events until one satisfies `pred`; returns it with every event seen
/// before it (descriptions), failing if the stream ends or stalls.
pub async fn wait_for<K>(
    events: &mut Events<K>,
    what: &str,
    mut pred: impl FnMut(&WatchEvent<K>) -> bool,
) -> anyhow::Result<(WatchEvent<K>, Vec<WatchEvent<K>>)>
where
    K: ResourceExt,
{
    let mut seen = Vec::new();
    loop {
        let next = within(what, events.try_next()).await;
        let next = match next {
            Ok(n) => n,
            Err(e) => bail!("{e:#}; events seen: {:?}", seen.iter().map(describe).collect::<Vec<_>>()),
        };
        match next.with_context(|| format!("watch stream failed while waiting for {what}"))? {
            None => bail!(
                "watch stream ended while waiting for {what}; events seen: {:?}",
                seen.iter().map(describe).collect::<Vec<_>>()
            ),
            Some(ev) if pred(&ev) => return Ok((ev, seen)),
            Some(ev) => seen.push(ev),
        }
    }
}

/// Reads the stream to its end (bounded by `limit`), returning every event.
pub async fn drain<K>(events: &mut Events<K>, limit: std::time::Duration) -> anyhow::Result<Vec<WatchEvent<K>>>
where
    K: ResourceExt,
{
    let mut seen = Vec::new();
    let ended = tokio::time::timeout(limit, async {
        while let Some(ev) = events.try_next().await? {
            seen.push(ev);
        }
        Ok::<_, kube::Error>(())
    })
    .await;
    match ended {
        Ok(result) => result.context("watch stream failed")?,
        Err(_) => bail!(
            "watch stream still open after {limit:?}; events seen: {:?}",
            seen.iter().map(describe).collect::<Vec<_>>()
        ),
    }
    Ok(seen)
}

/// The object's name if the event carries one.
pub fn event_name<K: ResourceExt>(ev: &WatchEvent<K>) -> Option<String> {
    match ev {
        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => Some(o.name_any()),
        _ => None,
    }
}

/// True when the event is an ADDED for `name`.
pub fn is_added<K: ResourceExt>(ev: &WatchEvent<K>, name: &str) -> bool {
    matches!(ev, WatchEvent::Added(o) if o.name_any() == name)
}

/// True when the event is a MODIFIED for `name`.
pub fn is_modified<K: ResourceExt>(ev: &WatchEvent<K>, name: &str) -> bool {
    matches!(ev, WatchEvent::Modified(o) if o.name_any() == name)
}

/// True when the event is a DELETED for `name`.
pub fn is_deleted<K: ResourceExt>(ev: &WatchEvent<K>, name: &str) -> bool {
    matches!(ev, WatchEvent::Deleted(o) if o.name_any() == name)
}

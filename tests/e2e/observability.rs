//! The Grafana dashboard (`deploy/grafana/scalehub.json`) and the alert rules
//! (`deploy/prometheus/rules.yaml`) query only what the hub exports (issue 12, part 2): every
//! metric and label they name is in a running hub's `/metrics`, with a failing and a capped
//! target so the per-target series exist. `promtool` checks the rules' own logic
//! (`scripts/test.sh`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::fixtures::{create, deployment, opted_in, sh};
use crate::harness::{Env, WAIT, eventually, on_simulator};
use crate::process::http_text;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_the_alerts_query_only_what_the_hub_exports() {
    on_simulator("observability", "the metric names do not depend on the server", async |env: &Env| {
        observability(env).await
    })
    .await;
}

/// Label names by sample name (`scalehub_decisions_total`, `scalehub_tick_lateness_seconds_bucket`, ...).
fn exposition(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = out.entry(line[..name_end].to_owned()).or_default();
        if let Some(rest) = line[name_end..].strip_prefix('{') {
            let inner = &rest[..rest.find('}').unwrap_or(rest.len())];
            for pair in inner.split("\",") {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.trim().to_owned());
                }
            }
        }
    }
    out
}

/// Metric names and label names a PromQL expression (and its legend) uses.
fn uses(expr: &str, legend: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let metrics: BTreeSet<String> = words(expr).into_iter().filter(|w| w.starts_with("scalehub_")).collect();
    let mut labels = BTreeSet::new();
    // `by (a, b)` clauses.
    let mut rest = expr;
    while let Some(at) = rest.find("by (") {
        let tail = &rest[at + 4..];
        let inner = &tail[..tail.find(')').unwrap_or(tail.len())];
        labels.extend(words(inner));
        rest = tail;
    }
    // `{a="x", b=~"y"}` matchers.
    let mut rest = expr;
    while let Some(at) = rest.find('{') {
        let tail = &rest[at + 1..];
        let inner = &tail[..tail.find('}').unwrap_or(tail.len())];
        for matcher in inner.split(',') {
            if let Some(name) = matcher.split(['=', '!']).next() {
                labels.extend(words(name));
            }
        }
        rest = tail;
    }
    // `{{a}}` in a legend, `$labels.a` in an annotation.
    for piece in legend.split("{{").skip(1) {
        let inner = piece.split("}}").next().unwrap_or("");
        labels.extend(words(inner.trim().trim_start_matches("$labels.")).into_iter().take(1));
    }
    for piece in legend.split("$labels.").skip(1) {
        labels.extend(words(piece).into_iter().take(1));
    }
    labels.retain(|l| l != "le" || !expr.contains("_bucket"));
    (metrics, labels)
}

/// Checks one query against the exposition; returns what is missing.
fn missing(exported: &BTreeMap<String, BTreeSet<String>>, expr: &str, legend: &str) -> Vec<String> {
    let (metrics, labels) = uses(expr, legend);
    let mut problems = Vec::new();
    let mut available: BTreeSet<String> = BTreeSet::new();
    for metric in &metrics {
        match exported.get(metric) {
            Some(l) => available.extend(l.iter().cloned()),
            None => problems.push(format!("metric {metric} (in {expr:?}) is not exported")),
        }
    }
    // Labels Prometheus adds itself, and template variables.
    for label in labels.iter().filter(|l| !["instance", "job", "value", "humanizeDuration"].contains(&l.as_str())) {
        if !available.contains(label) {
            problems.push(format!("label {label} (in {expr:?} / {legend:?}) is on none of {metrics:?}"));
        }
    }
    problems
}

async fn observability(env: &Env) -> anyhow::Result<()> {
    let profiles = json!({
        "wants-five": {"metric": sh("echo 5", 5_000), "evaluate": sh(r#"cat >/dev/null; echo '{"targetReplicas": 5}'"#, 5_000), "runMode": "per-resource"},
        "broken": {"metric": sh("exit 3", 5_000), "evaluate": sh("exit 3", 5_000), "runMode": "per-resource"},
    });
    let hub = env.start_hub(&env.config(profiles), "hub.db", "hub-a").await?;
    create(
        env,
        &deployment("capped", 1, opted_in(&[("scalehub.io/profile", "wants-five"), ("scalehub.io/max-replicas", "2")])),
    )
    .await?;
    create(env, &deployment("broken", 1, opted_in(&[("scalehub.io/profile", "broken")]))).await?;

    let text = eventually("the per-target series in /metrics", WAIT, async || {
        let (status, text) = http_text(hub.addr, "GET", "/metrics", None, None).await?;
        ensure!(status == 200, "GET /metrics: {status}");
        let ready = text.contains("scalehub_target_at_max{")
            && text.contains("scalehub_target_failing_ticks{")
            && text.contains("scalehub_leader 1")
            && text.contains("scalehub_hook_errors_total{")
            // The capped target's scale call (1 -> 2) is counted just after its decision.
            && text.contains("scalehub_scale_calls_total{");
        Ok(ready.then_some(text))
    })
    .await?;
    let exported = exposition(&text);
    ensure!(exported["scalehub_target_at_max"].contains("name"), "{:?}", exported["scalehub_target_at_max"]);

    let mut problems = Vec::new();
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/scalehub.json"),
    )?)?;
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().context("panels")? {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().context("a target without expr")?;
            let expr = expr.replace("$namespace", "shop").replace("$target", "web");
            problems.extend(missing(&exported, &expr, target["legendFormat"].as_str().unwrap_or("")));
            queries += 1;
        }
    }
    for variable in dashboard["templating"]["list"].as_array().context("templating")? {
        let query = variable["query"]["query"].as_str().context("a variable without a query")?;
        let inner = query.trim_start_matches("label_values(").trim_end_matches(')');
        let (expr, label) = inner.rsplit_once(',').context("label_values(metric, label)")?;
        let expr = expr.replace("$namespace", "shop");
        problems.extend(missing(&exported, &expr, &format!("{{{{{}}}}}", label.trim())));
        queries += 1;
    }
    ensure!(queries >= 12, "the dashboard has only {queries} queries");

    let rules: Value = serde_saphyr::from_str(&std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/rules.yaml"),
    )?)?;
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().context("groups")? {
        for rule in group["rules"].as_array().context("rules")? {
            let expr = rule["expr"].as_str().context("a rule without expr")?;
            let annotations = rule["annotations"].to_string();
            problems.extend(missing(&exported, expr, &annotations));
            alerts.insert(rule["alert"].as_str().unwrap_or_default().to_owned());
        }
    }
    for alert in [
        "ScalehubNoLeader",
        "ScalehubTicksBehind",
        "ScalehubStoreFailing",
        "ScalehubTargetFailing",
        "ScalehubTargetAtMax",
    ] {
        ensure!(alerts.contains(alert), "no {alert} alert: {alerts:?}");
    }
    ensure!(
        problems.is_empty(),
        "the dashboard or the rules use what /metrics does not have:\n{}",
        problems.join("\n")
    );
    hub.shutdown().await;
    Ok(())
}

#[test]
fn the_query_reader_finds_metrics_and_labels() {
    let (metrics, labels) = uses(
        "sum by (verb, code) (rate(scalehub_apiserver_requests_total{resource=\"pods\"}[5m]))",
        "{{verb}} {{ code }}",
    );
    assert_eq!(metrics.into_iter().collect::<Vec<_>>(), ["scalehub_apiserver_requests_total"]);
    assert_eq!(labels.into_iter().collect::<Vec<_>>(), ["code", "resource", "verb"]);
    let exported =
        exposition("# HELP x\nscalehub_apiserver_requests_total{verb=\"get\",resource=\"pods\",code=\"200\"} 3\n");
    assert!(missing(&exported, "sum by (verb) (scalehub_apiserver_requests_total)", "").is_empty());
    assert_eq!(missing(&exported, "sum by (nope) (scalehub_apiserver_requests_total)", "").len(), 1);
    assert_eq!(missing(&exported, "scalehub_not_there", "").len(), 1);
}

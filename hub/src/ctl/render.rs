//! What `kubectl scalehub` prints: tables like `kubectl get`, reason chains, summaries.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use super::client::CtlError;

/// Colour when stdout is a terminal and `NO_COLOR` is unset.
pub fn color_enabled() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(text: &str, code: &str, color: bool) -> String {
    if color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
}

fn outcome_color(outcome: &str) -> &'static str {
    match outcome {
        "scaled" => "32",
        "error" | "invalid" | "conflict" => "31",
        "held" | "shadow" | "disabled" => "33",
        _ => "0",
    }
}

/// One line.
pub fn line(out: &mut impl Write, text: &str) -> Result<(), CtlError> {
    writeln!(out, "{text}")?;
    Ok(())
}

/// Pretty JSON.
pub fn json(out: &mut impl Write, value: &Value) -> Result<(), CtlError> {
    writeln!(out, "{}", serde_json::to_string_pretty(value).unwrap_or_default())?;
    Ok(())
}

/// The same as YAML.
pub fn yaml(out: &mut impl Write, value: &Value) -> Result<(), CtlError> {
    let text = serde_saphyr::to_string(value).map_err(|e| CtlError::Usage(format!("yaml output: {e}")))?;
    write!(out, "{text}")?;
    Ok(())
}

/// `3m20s ago` style ages, as kubectl prints them.
pub fn age(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{}s", s / 60, s % 60),
        3600..86400 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

/// Why a target has the replicas it has, in a few words: the last reason of its last
/// decision, or its error.
pub fn why_text(target: &Value) -> String {
    if let Some(error) = target["error"].as_str() {
        return error.to_owned();
    }
    let decision = &target["lastDecision"];
    if let Some(error) = decision["error"].as_str() {
        return error.to_owned();
    }
    let reasons = decision["reasons"].as_array();
    match reasons.and_then(|r| r.last()) {
        Some(reason) => reason["message"].as_str().unwrap_or_default().to_owned(),
        None if decision.is_object() => match decision["rawEvaluation"].as_i64() {
            Some(raw) => format!("the evaluation asks for {raw}"),
            None => String::new(),
        },
        None => "no decision yet".to_owned(),
    }
}

fn replicas(target: &Value) -> String {
    let n = |v: &Value| v.as_i64().map_or("-".to_owned(), |n| n.to_string());
    format!("{} → {}", n(&target["currentReplicas"]), n(&target["desiredReplicas"]))
}

/// The fleet table.
pub fn targets(out: &mut impl Write, items: &[Value], wide: bool, now: i64, color: bool) -> Result<(), CtlError> {
    if items.is_empty() {
        writeln!(out, "No targets found.")?;
        return Ok(());
    }
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(items.len() + 1);
    let mut header = vec!["NAMESPACE", "KIND", "NAME", "STATE", "REPLICAS", "LAST DECISION"];
    if wide {
        header.extend(["PROFILE", "MIN/MAX", "INTERVAL"]);
    }
    header.push("WHY");
    rows.push(header.iter().map(|h| (*h).to_owned()).collect());
    for t in items {
        let last = t["lastDecision"]["time"].as_i64().map_or("-".to_owned(), |at| age(now - at));
        let mut row = vec![
            t["namespace"].as_str().unwrap_or_default().to_owned(),
            t["kind"].as_str().unwrap_or_default().to_owned(),
            t["name"].as_str().unwrap_or_default().to_owned(),
            t["state"].as_str().unwrap_or_default().to_owned(),
            replicas(t),
            last,
        ];
        if wide {
            let spec = &t["spec"];
            row.push(spec["profile"].as_str().unwrap_or("-").to_owned());
            row.push(match (spec["minReplicas"].as_i64(), spec["maxReplicas"].as_i64()) {
                (Some(min), Some(max)) => format!("{min}/{max}"),
                _ => "-".to_owned(),
            });
            row.push(spec["interval"].as_str().unwrap_or("-").to_owned());
        }
        row.push(why_text(t));
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> =
        (0..columns - 1).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for (i, row) in rows.iter().enumerate() {
        let mut text = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                text.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count() + 3;
                let cell = if c == 3 && i > 0 { paint(cell, outcome_color(cell), color) } else { cell.clone() };
                text.push_str(&cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

/// The namespace, kind and name of a stream event's payload.
pub fn event_key(data: &Value) -> Option<(&str, &str, &str)> {
    for t in [&data["target"], &data["key"], data] {
        if let (Some(ns), Some(kind), Some(name)) = (t["namespace"].as_str(), t["kind"].as_str(), t["name"].as_str()) {
            return Some((ns, kind, name));
        }
    }
    None
}

/// One line per streamed decision (`-w`).
pub fn event_line(out: &mut impl Write, event: &str, data: &Value, color: bool) -> std::io::Result<()> {
    let Some((ns, kind, name)) = event_key(data) else { return Ok(()) };
    if event != "decision" {
        return Ok(());
    }
    let outcome = data["outcome"].as_str().unwrap_or_default();
    let n = |v: &Value| v.as_i64().map_or("-".to_owned(), |n| n.to_string());
    let why = data["error"].as_str().map(str::to_owned).unwrap_or_else(|| {
        data["reasons"].as_array().and_then(|r| r.last()).and_then(|r| r["message"].as_str()).unwrap_or("").to_owned()
    });
    writeln!(
        out,
        "{ns}/{kind}/{name}  {}  {} → {}  {why}",
        paint(outcome, outcome_color(outcome), color),
        n(&data["currentReplicas"]),
        n(&data["finalReplicas"])
    )?;
    out.flush()
}

fn local_time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// `why`: the target, its stabilisation bounds, and its last decisions with their reasons and hooks.
pub fn why(out: &mut impl Write, detail: &Value, decisions: &[Value], color: bool) -> Result<(), CtlError> {
    let spec = &detail["spec"];
    writeln!(
        out,
        "{}/{}/{}  {}  replicas {}",
        detail["namespace"].as_str().unwrap_or_default(),
        detail["kind"].as_str().unwrap_or_default(),
        paint(detail["name"].as_str().unwrap_or_default(), "1", color),
        paint(
            detail["state"].as_str().unwrap_or_default(),
            outcome_color(detail["state"].as_str().unwrap_or("")),
            color
        ),
        replicas(detail)
    )?;
    if let (Some(min), Some(max)) = (spec["minReplicas"].as_i64(), spec["maxReplicas"].as_i64()) {
        writeln!(
            out,
            "  profile {}, bounds {min}–{max}, interval {}, windows up {} / down {}",
            spec["profile"].as_str().unwrap_or("-"),
            spec["interval"].as_str().unwrap_or("-"),
            spec["upscaleStabilization"].as_str().unwrap_or("-"),
            spec["downscaleStabilization"].as_str().unwrap_or("-")
        )?;
    }
    if let Some(error) = detail["error"].as_str() {
        writeln!(out, "  {}", paint(&format!("error: {error}"), "31", color))?;
    }
    if let Some(o) = detail["activeOverride"].as_object() {
        let by = o.get("setBy").and_then(Value::as_str).unwrap_or("?");
        let reason = o.get("reason").and_then(Value::as_str).unwrap_or("");
        writeln!(out, "  override by {by}: {reason}")?;
    }
    let stab = &detail["stabilisation"];
    let bound = |v: &Value| v.as_i64().map(|n| n.to_string());
    match (bound(&stab["lowerBound"]), bound(&stab["upperBound"])) {
        (Some(low), Some(high)) => writeln!(out, "  stabilisation: no lower than {low}, no higher than {high} now")?,
        (Some(low), None) => writeln!(out, "  stabilisation: no lower than {low} now")?,
        (None, Some(high)) => writeln!(out, "  stabilisation: no higher than {high} now")?,
        (None, None) => {}
    }
    if decisions.is_empty() {
        writeln!(out, "  no decisions yet")?;
    }
    for d in decisions {
        let outcome = d["outcome"].as_str().unwrap_or_default();
        let n = |v: &Value| v.as_i64().map_or("-".to_owned(), |n| n.to_string());
        writeln!(out)?;
        writeln!(
            out,
            "{}  {}  {} → {}  (the evaluation asked for {})",
            local_time(d["time"].as_i64().unwrap_or_default()),
            paint(outcome, outcome_color(outcome), color),
            n(&d["currentReplicas"]),
            n(&d["finalReplicas"]),
            n(&d["rawEvaluation"])
        )?;
        if let Some(error) = d["error"].as_str() {
            writeln!(out, "  {}", paint(&format!("error: {error}"), "31", color))?;
        }
        for (i, r) in d["reasons"].as_array().into_iter().flatten().enumerate() {
            writeln!(
                out,
                "  {}. {} {} {} → {}: {}",
                i + 1,
                r["step"].as_str().unwrap_or_default(),
                paint(r["code"].as_str().unwrap_or_default(), "36", color),
                n(&r["from"]),
                n(&r["to"]),
                r["message"].as_str().unwrap_or_default()
            )?;
        }
        for h in d["hooks"].as_array().into_iter().flatten() {
            let status = match (h["exitCode"].as_i64(), h["httpStatus"].as_i64()) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(status)) => format!("HTTP {status}"),
                _ if h["timedOut"].as_bool() == Some(true) => "timed out".to_owned(),
                _ => "-".to_owned(),
            };
            let error = h["error"].as_str().map(|e| format!(" — {e}")).unwrap_or_default();
            writeln!(
                out,
                "  hook {} ({}): {status}, {} ms{error}",
                h["stage"].as_str().unwrap_or_default(),
                h["kind"].as_str().unwrap_or_default(),
                h["durationMs"].as_i64().unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

/// The override a pin, bounds or pause set.
pub fn override_line(out: &mut impl Write, target: &str, view: &Value) -> Result<(), CtlError> {
    let what = if let Some(replicas) = view["replicas"].as_i64() {
        format!("pinned to {replicas}")
    } else if let Some(paused) = view["paused"].as_str().or_else(|| view["pauseDirection"].as_str()) {
        format!("paused ({paused})")
    } else {
        let b = |v: &Value| v.as_i64().map_or("…".to_owned(), |n| n.to_string());
        format!("bounds {}–{}", b(&view["minReplicas"]), b(&view["maxReplicas"]))
    };
    let until = view["until"].as_i64().map(|u| format!(" until {}", local_time(u))).unwrap_or_default();
    writeln!(out, "{target}: {what}{until}")?;
    Ok(())
}

/// A replay's summary beside what happened.
pub fn replay(out: &mut impl Write, target: &str, res: &Value) -> Result<(), CtlError> {
    let (r, a) = (&res["summary"]["replayed"], &res["summary"]["actual"]);
    writeln!(
        out,
        "{target}: replay of {} to {}",
        local_time(res["from"].as_i64().unwrap_or(0)),
        local_time(res["to"].as_i64().unwrap_or(0))
    )?;
    writeln!(out, "{:<20}{:>10}{:>10}", "", "WHAT IF", "ACTUAL")?;
    let int = |v: &Value, key: &str| v[key].as_i64().unwrap_or_default().to_string();
    let hours = |v: &Value, key: &str| format!("{:.2}", v[key].as_f64().unwrap_or_default());
    let span = |v: &Value, key: &str| age((v[key].as_f64().unwrap_or_default() * 1000.0) as i64);
    let rows = [
        ("scale-ups", int(r, "scaleUps"), int(a, "scaleUps")),
        ("scale-downs", int(r, "scaleDowns"), int(a, "scaleDowns")),
        ("replica-hours", hours(r, "replicaHours"), hours(a, "replicaHours")),
        ("highest", int(r, "highest"), int(a, "highest")),
        ("lowest", int(r, "lowest"), int(a, "lowest")),
        ("under-provisioned", span(r, "underProvisionedSeconds"), span(a, "underProvisionedSeconds")),
        ("over-provisioned", span(r, "overProvisionedSeconds"), span(a, "overProvisionedSeconds")),
    ];
    for (label, replayed, actual) in rows {
        writeln!(out, "{label:<20}{replayed:>10}{actual:>10}")?;
    }
    if res["truncated"].as_bool() == Some(true) {
        writeln!(out, "(the range held more ticks than one replay reads: the newest were replayed)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_fleet_table_aligns_like_kubectl_and_says_why() {
        let items = vec![
            json!({"namespace": "shop", "kind": "Deployment", "name": "web", "state": "active", "currentReplicas": 2,
                   "desiredReplicas": 3, "lastDecision": {"time": 1_000, "reasons": [{"message": "held by the window"}]}}),
            json!({"namespace": "shop", "kind": "Deployment", "name": "typo", "state": "invalid", "error": "min-replicas: \"five\""}),
        ];
        let mut out = Vec::new();
        targets(&mut out, &items, false, 61_000, false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("NAMESPACE   KIND         NAME   STATE     REPLICAS   LAST DECISION   WHY"),
            "{text}"
        );
        assert!(
            lines[1].contains("2 → 3") && lines[1].contains("1m0s") && lines[1].ends_with("held by the window"),
            "{text}"
        );
        assert!(lines[2].contains("- → -") && lines[2].ends_with("min-replicas: \"five\""), "{text}");
        let mut out = Vec::new();
        targets(&mut out, &[], false, 0, false).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "No targets found.\n");
    }

    #[test]
    fn ages_read_like_kubectls() {
        assert_eq!(age(5_000), "5s");
        assert_eq!(age(200_000), "3m20s");
        assert_eq!(age(7_260_000), "2h1m");
        assert_eq!(age(90_000_000), "1d1h");
    }
}

//! `kubectl scalehub` (the binary invoked as `kubectl-scalehub`, e.g. through a symlink on
//! PATH) and `scalehub ctl`: the hub's REST API from the terminal.
//!
//! The hub is found from `--server`, `$SCALEHUB_URL` or `server:` in
//! `$XDG_CONFIG_HOME/scalehub/ctl.yaml` (default `http://127.0.0.1:8080`, where
//! `kubectl port-forward svc/scalehub 8080` puts it); the token from `--token`,
//! `$SCALEHUB_TOKEN`, `--token-file` or `token:`/`tokenFile:` in that file. Tokens are never
//! printed.
//!
//! Exit codes: 0 done; 1 the hub refused or failed the request (its message on one line); 2 bad
//! usage; 3 the hub could not be reached.

pub(crate) mod client;
mod render;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use client::{Client, CtlError};

/// `kubectl scalehub`, as a plugin.
#[derive(Parser)]
#[command(name = "kubectl scalehub", version, about = "scalehub's targets, decisions and overrides from the terminal")]
pub struct Plugin {
    /// The command.
    #[command(flatten)]
    pub args: CtlArgs,
}

/// The arguments of `scalehub ctl` and `kubectl scalehub`.
#[derive(Args, Clone, Debug)]
pub struct CtlArgs {
    /// The hub's URL (default from $SCALEHUB_URL, the config file, or http://127.0.0.1:8080).
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// A bearer token (default from $SCALEHUB_TOKEN or the config file).
    #[arg(long, global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the bearer token.
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// The CA that signs an https hub's certificate (default: the system's roots).
    #[arg(long, global = true)]
    pub ca_cert: Option<PathBuf>,
    /// The namespace (default `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// Output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table.
    #[default]
    Table,
    /// A wider table.
    Wide,
    /// The API's JSON.
    Json,
    /// The API's JSON as YAML.
    Yaml,
}

/// The commands.
#[derive(Subcommand, Clone, Debug)]
pub enum CtlCommand {
    /// List targets like `kubectl get`: state, current → desired replicas, last decision, why.
    Get {
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Only targets in this state (active, shadow, invalid, error, conflict, ...).
        #[arg(long)]
        state: Option<String>,
        /// Targets whose name or namespace contains this.
        #[arg(long)]
        search: Option<String>,
        /// Only workloads matching this label selector (asked of the cluster with kubectl, as
        /// the hub keeps no workload labels): Deployments, StatefulSets and ReplicaSets.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// After the list, follow the hub's stream: a line per decision.
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// The last decisions of one target with their reasons, hooks and stabilisation bounds.
    Why {
        /// `deploy/web`, `sts/db`, `rs/x` or `Kind/name`.
        target: String,
        /// How many decisions.
        #[arg(long, default_value_t = 3)]
        last: u32,
        /// Output format (`json` and `yaml` print the API's documents).
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Pin a target's replicas for a while.
    Pin {
        /// The target.
        target: String,
        /// Replicas to hold.
        replicas: i32,
        /// How long, e.g. `2h` (at most 7 days).
        #[arg(long = "for", default_value = "1h")]
        duration: String,
        /// Why (shown in every decision it shapes).
        #[arg(long)]
        reason: String,
    },
    /// Narrow a target's bounds for a while.
    Bounds {
        /// The target.
        target: String,
        /// Lower bound.
        #[arg(long)]
        min: Option<i32>,
        /// Upper bound.
        #[arg(long)]
        max: Option<i32>,
        /// How long.
        #[arg(long = "for", default_value = "1h")]
        duration: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Pause a target's scaling (up, down or both) for a while.
    Pause {
        /// The target.
        target: String,
        /// `up`, `down` or `both`.
        #[arg(long, default_value = "both")]
        direction: String,
        /// How long.
        #[arg(long = "for", default_value = "1h")]
        duration: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Remove a target's override (pin, bounds or pause).
    Unpin {
        /// The target.
        target: String,
    },
    /// Run a target's metric and evaluate stages now (the CPA's evaluation call).
    Evaluate {
        /// The target.
        target: String,
        /// Decide but scale nothing and leave the windows alone.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replay a candidate policy over a target's recorded ticks (read-only).
    Replay {
        /// The target.
        target: String,
        /// How far back, e.g. `6h` (default 24h).
        #[arg(long, default_value = "24h")]
        since: String,
        /// Lower bound to try.
        #[arg(long)]
        min: Option<i32>,
        /// Upper bound to try.
        #[arg(long)]
        max: Option<i32>,
        /// Scale-up window to try, e.g. `30s`.
        #[arg(long)]
        up_window: Option<String>,
        /// Scale-down window to try, e.g. `1m`.
        #[arg(long)]
        down_window: Option<String>,
        /// Another profile's built-in calculation to run over the recorded metrics.
        #[arg(long, value_name = "PROFILE")]
        calculation: Option<String>,
        /// More settings as the API's `policy` JSON (behavior, predictive, scaleToZero, calculation).
        #[arg(long)]
        policy: Option<String>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

/// Runs a command; the process's exit code (errors are printed as one line).
pub async fn main(args: CtlArgs) -> u8 {
    match run(args).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// Whether the binary was invoked as the kubectl plugin (`kubectl-scalehub`, any extension).
pub fn invoked_as_plugin(argv0: &std::ffi::OsStr) -> bool {
    std::path::Path::new(argv0).file_stem().and_then(|s| s.to_str()).is_some_and(|s| s == "kubectl-scalehub")
}

async fn run(args: CtlArgs) -> Result<(), CtlError> {
    let client = Client::new(&args).await?;
    let namespace = args.namespace.clone().unwrap_or_else(|| "default".to_owned());
    let mut out = std::io::stdout();
    let color = render::color_enabled();
    match args.command {
        CtlCommand::Get { all_namespaces, state, search, selector, output, watch } => {
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut query = vec![("limit", "500".to_owned())];
                if !all_namespaces {
                    query.push(("namespace", namespace.clone()));
                }
                if let Some(state) = &state {
                    query.push(("state", state.clone()));
                }
                if let Some(search) = &search {
                    query.push(("search", search.clone()));
                }
                if let Some(cursor) = &cursor {
                    query.push(("cursor", cursor.clone()));
                }
                let page = client.get("/api/v1/targets", &query).await?;
                items.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["nextCursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            if let Some(selector) = &selector {
                let matching = labelled_workloads(selector, (!all_namespaces).then_some(namespace.as_str()))?;
                items.retain(|t| {
                    let key = |f: &str| t[f].as_str().unwrap_or_default().to_owned();
                    matching.contains(&(key("namespace"), key("kind"), key("name")))
                });
            }
            let now = now_ms();
            match output {
                Output::Json => render::json(&mut out, &json!({"items": items}))?,
                Output::Yaml => render::yaml(&mut out, &json!({"items": items}))?,
                Output::Table | Output::Wide => {
                    render::targets(&mut out, &items, output == Output::Wide, now, color)?;
                }
            }
            if watch {
                let filter = (!all_namespaces).then_some(namespace.as_str());
                client
                    .follow(filter, |event, data| render::event_line(&mut std::io::stdout(), event, data, color))
                    .await?;
            }
        }
        CtlCommand::Why { target, last, output } => {
            let path = target_path(&namespace, &target)?;
            let detail = client.get(&path, &[]).await?;
            let decisions = client.get(&format!("{path}/decisions"), &[("limit", last.to_string())]).await?;
            match output {
                Output::Json => render::json(&mut out, &json!({"target": detail, "decisions": decisions["items"]}))?,
                Output::Yaml => render::yaml(&mut out, &json!({"target": detail, "decisions": decisions["items"]}))?,
                _ => {
                    render::why(&mut out, &detail, decisions["items"].as_array().map_or(&[][..], Vec::as_slice), color)?
                }
            }
        }
        CtlCommand::Pin { target, replicas, duration, reason } => {
            let body = json!({"replicas": replicas, "duration": duration, "reason": reason});
            set_override(&client, &namespace, &target, body, &mut out).await?;
        }
        CtlCommand::Bounds { target, min, max, duration, reason } => {
            if min.is_none() && max.is_none() {
                return Err(CtlError::Usage("bounds needs --min, --max or both".into()));
            }
            let body = json!({"minReplicas": min, "maxReplicas": max, "duration": duration, "reason": reason});
            set_override(&client, &namespace, &target, body, &mut out).await?;
        }
        CtlCommand::Pause { target, direction, duration, reason } => {
            let body = json!({"paused": direction, "duration": duration, "reason": reason});
            set_override(&client, &namespace, &target, body, &mut out).await?;
        }
        CtlCommand::Unpin { target } => {
            let path = format!("{}/override", target_path(&namespace, &target)?);
            client.send("DELETE", &path, &[], None).await?;
            render::line(&mut out, &format!("{target}: override removed"))?;
        }
        CtlCommand::Evaluate { target, dry_run } => {
            let path = format!("{}/evaluation", target_path(&namespace, &target)?);
            let res = client.send("POST", &path, &[("dry_run", dry_run.to_string())], None).await?;
            let replicas = res["targetReplicas"].as_i64().unwrap_or_default();
            let how = if dry_run { " (dry run: nothing scaled)" } else { "" };
            render::line(&mut out, &format!("{target}: the evaluation asks for {replicas} replicas{how}"))?;
        }
        CtlCommand::Replay { target, since, min, max, up_window, down_window, calculation, policy, output } => {
            let path = format!("{}/replay", target_path(&namespace, &target)?);
            let mut candidate: Value = match policy {
                Some(text) => {
                    serde_json::from_str(&text).map_err(|e| CtlError::Usage(format!("--policy is not JSON: {e}")))?
                }
                None => json!({}),
            };
            let Some(fields) = candidate.as_object_mut() else {
                return Err(CtlError::Usage("--policy must be a JSON object".into()));
            };
            for (key, value) in [
                ("minReplicas", min.map(Value::from)),
                ("maxReplicas", max.map(Value::from)),
                ("upscaleStabilization", up_window.map(Value::from)),
                ("downscaleStabilization", down_window.map(Value::from)),
                ("calculation", calculation.map(|profile| json!({"profile": profile}))),
            ] {
                if let Some(value) = value {
                    fields.insert(key.to_owned(), value);
                }
            }
            let since = scalehub_core::parse_duration(&since)
                .map_err(|e| CtlError::Usage(format!("--since {since:?}: {e}")))?;
            let now = now_ms();
            let from = now.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
            let with_ticks = !matches!(output, Output::Table);
            let body = json!({"from": from, "to": now + 1, "policy": candidate, "ticks": with_ticks});
            let res = client.send("POST", &path, &[], Some(&body)).await?;
            match output {
                Output::Json => render::json(&mut out, &res)?,
                Output::Yaml => render::yaml(&mut out, &res)?,
                Output::Table | Output::Wide => render::replay(&mut out, &target, &res)?,
            }
        }
    }
    Ok(())
}

/// The (namespace, kind, name) of the workloads matching `selector`, from
/// `kubectl get deployments,statefulsets,replicasets -l SELECTOR -o json` (the user's own
/// kubeconfig and context; the selector is one argument, never through a shell).
fn labelled_workloads(
    selector: &str,
    namespace: Option<&str>,
) -> Result<std::collections::BTreeSet<(String, String, String)>, CtlError> {
    let kubectl = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let mut command = std::process::Command::new(&kubectl);
    command.args(["get", "deployments.apps,statefulsets.apps,replicasets.apps", "-o", "json", "-l", selector]);
    match namespace {
        Some(ns) => command.args(["-n", ns]),
        None => command.arg("-A"),
    };
    let out = command
        .output()
        .map_err(|e| CtlError::Usage(format!("-l needs kubectl to list the labelled workloads: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(CtlError::Kubectl(err.lines().next().unwrap_or("kubectl failed").trim().to_owned()));
    }
    let list: Value =
        serde_json::from_slice(&out.stdout).map_err(|e| CtlError::Kubectl(format!("kubectl's JSON: {e}")))?;
    let field =
        |item: &Value, path: &[&str]| path.iter().fold(item, |v, k| &v[*k]).as_str().unwrap_or_default().to_owned();
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| {
            (field(item, &["metadata", "namespace"]), field(item, &["kind"]), field(item, &["metadata", "name"]))
        })
        .collect())
}

async fn set_override(
    client: &Client,
    namespace: &str,
    target: &str,
    body: Value,
    out: &mut impl std::io::Write,
) -> Result<(), CtlError> {
    let path = format!("{}/override", target_path(namespace, target)?);
    let view = client.send("PUT", &path, &[], Some(&body)).await?;
    render::override_line(out, target, &view)
}

/// `deploy/web` in `namespace` as its API path.
fn target_path(namespace: &str, target: &str) -> Result<String, CtlError> {
    let (kind, name) = parse_target(target)?;
    Ok(format!("/api/v1/targets/{}/{}/{}", encode(namespace), encode(&kind), encode(name)))
}

/// `deploy/web` → (`Deployment`, `web`), with kubectl's short names.
pub fn parse_target(target: &str) -> Result<(String, &str), CtlError> {
    let Some((kind, name)) = target.split_once('/').filter(|(k, n)| !k.is_empty() && !n.is_empty()) else {
        return Err(CtlError::Usage(format!("{target:?} is not KIND/NAME (e.g. deploy/web)")));
    };
    let kind = match kind.to_ascii_lowercase().as_str() {
        "deploy" | "deployment" | "deployments" | "deployment.apps" => "Deployment".to_owned(),
        "sts" | "statefulset" | "statefulsets" | "statefulset.apps" => "StatefulSet".to_owned(),
        "rs" | "replicaset" | "replicasets" | "replicaset.apps" => "ReplicaSet".to_owned(),
        "rollout" | "rollouts" | "ro" => "Rollout".to_owned(),
        _ => kind.to_owned(),
    };
    Ok((kind, name))
}

/// Percent-encodes a path segment or query value (names are DNS labels, but an argument is data).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_take_kubectls_short_names_and_paths_are_encoded() {
        assert_eq!(parse_target("deploy/web").unwrap(), ("Deployment".to_owned(), "web"));
        assert_eq!(parse_target("sts/db").unwrap(), ("StatefulSet".to_owned(), "db"));
        assert_eq!(parse_target("Rollout/x").unwrap(), ("Rollout".to_owned(), "x"));
        assert!(parse_target("web").is_err());
        assert!(parse_target("deploy/").is_err());
        assert_eq!(target_path("shop", "deploy/we b").unwrap(), "/api/v1/targets/shop/Deployment/we%20b");
        assert_eq!(target_path("a/b", "deploy/../x").unwrap(), "/api/v1/targets/a%2Fb/Deployment/..%2Fx");
    }
}

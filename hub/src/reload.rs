//! Config reload without a restart: a ConfigMap update reaches the pod as a changed file.
//!
//! The file is checked every [`CHECK_EVERY`] (its modification time and size, through
//! symlinks, as a ConfigMap volume swaps them). A changed file is loaded and validated like at
//! start: a valid one puts its profiles in force (every target picks them up on its next
//! tick) and is logged and shown in `/api/v1/hub`; an invalid one is refused with its field
//! path, and the config in force stays. Settings that only apply at start (the listen
//! address, the database, the namespaces, the extra kinds, the hook concurrency, timeouts, the API's tokens
//! and switches) are reported as needing a restart rather than applied halfway. Both outcomes
//! are also an Event on the hub's Pod (`ConfigReloaded`, `ConfigRefused`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use scalehub_core::config::Config;

use crate::hub::Context;

/// How often the config file is checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// What `/api/v1/hub` says of the config.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigStatus {
    /// When the config in force was loaded, unix milliseconds.
    pub loaded_at: i64,
    /// Reloads applied since start.
    pub reloads: u64,
    /// Why the last changed file was refused, if it was (the config in force stays).
    pub last_error: Option<String>,
    /// What the config in force has that the hub ignores (e.g. profile keys of another CPA version).
    pub warnings: Vec<String>,
    /// Settings changed in the file that apply only after a restart.
    pub restart_needed: Vec<String>,
}

impl ConfigStatus {
    /// The status of the config a hub starts with.
    pub fn started(config: &Config, now: i64) -> Self {
        ConfigStatus { loaded_at: now, warnings: config.warnings.clone(), ..Default::default() }
    }
}

/// What identifies a version of the file.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches `path` until `shutdown`; `started` is the config the hub started with.
pub fn spawn(ctx: Arc<Context>, path: PathBuf, started: Arc<Config>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut seen = stamp(&path);
        let mut interval = tokio::time::interval(CHECK_EVERY);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let now = stamp(&path);
            if now == seen || now.is_none() {
                // Unchanged, or gone for a moment (a ConfigMap swap): keep what is in force.
                continue;
            }
            seen = now;
            reload(&ctx, &path, &started);
        }
    });
}

/// Loads the changed file and puts it in force, or records why not.
fn reload(ctx: &Context, path: &Path, started: &Config) {
    let loaded = Config::load(path).map_err(|e| format!("{e:#}")).and_then(|config| {
        if config.profiles.is_empty() {
            Err("profiles: at least one profile is required".to_owned())
        } else {
            Ok(config)
        }
    });
    let mut status = match ctx.config_status.write() {
        Ok(status) => status,
        Err(poisoned) => poisoned.into_inner(),
    };
    match loaded {
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "the changed hub config is refused; the one in force stays");
            event(
                ctx,
                true,
                "ConfigRefused",
                format!("the changed config is refused, the one in force stays: {error}"),
            );
            status.last_error = Some(error);
        }
        Ok(config) => {
            ctx.profiles.replace(&config);
            for warning in &config.warnings {
                tracing::warn!(%warning, "hub config");
            }
            let restart_needed = restart_needed(started, &config);
            if !restart_needed.is_empty() {
                tracing::warn!(settings = ?restart_needed, "changed hub settings apply only after a restart");
            }
            *status = ConfigStatus {
                loaded_at: (ctx.clock)(),
                reloads: status.reloads + 1,
                last_error: None,
                warnings: config.warnings.clone(),
                restart_needed,
            };
            tracing::info!(path = %path.display(), profiles = config.profiles.len(), "hub config reloaded");
            let mut note = format!("config reloaded: {} profiles", config.profiles.len());
            if !status.restart_needed.is_empty() {
                note.push_str(&format!("; these apply only after a restart: {}", status.restart_needed.join(", ")));
            }
            event(ctx, false, "ConfigReloaded", note);
            ctx.reconfigured.notify_one();
        }
    }
}

/// An Event on the hub's own Pod, when it knows it (`POD_NAME` and `POD_NAMESPACE`, from the
/// downward API as `deploy/` sets them).
fn event(ctx: &Context, warning: bool, reason: &str, note: String) {
    if let (Ok(name), Ok(namespace)) = (std::env::var("POD_NAME"), std::env::var("POD_NAMESPACE")) {
        ctx.events.emit_on_pod(&namespace, &name, warning, reason, note);
    }
}

/// The start-only settings that differ between the running config and `new`.
fn restart_needed(running: &Config, new: &Config) -> Vec<String> {
    let changed = [
        ("listen", running.listen != new.listen),
        ("database", running.database != new.database),
        ("sharding", running.sharding != new.sharding),
        ("namespaces", running.namespaces != new.namespaces),
        ("retention", running.retention != new.retention),
        ("hookConcurrency", running.hook_concurrency != new.hook_concurrency),
        ("metricsResolution", running.metrics_resolution != new.metrics_resolution),
        ("kubernetesTimeout", running.kubernetes_timeout != new.kubernetes_timeout),
        ("api", running.api != new.api),
        ("extraKinds", running.extra_kinds != new.extra_kinds),
    ];
    changed.iter().filter(|(_, changed)| *changed).map(|(key, _)| (*key).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_only_settings_are_named_when_they_change() {
        let a = Config::from_yaml_str("listen: 127.0.0.1:8080\nprofiles: {}").unwrap();
        let b = Config::from_yaml_str("listen: 127.0.0.1:9090\nretention: 1d\nprofiles: {}").unwrap();
        assert_eq!(restart_needed(&a, &b), ["listen", "retention"]);
        assert!(restart_needed(&a, &a).is_empty());
    }
}

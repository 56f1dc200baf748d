//! `kubectl scalehub` (issue 12, part 1): the real kubectl finds the binary as the plugin
//! `kubectl-scalehub` on PATH and runs it against a hub on the simulator: get, why, pin and
//! unpin, evaluate, replay; errors as one line with an exit code scripts can use.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use crate::fixtures::{create, deployment, opted_in, sh};
use crate::harness::{Env, WAIT, eventually, on_simulator};

const TOKEN: &str = "plugin-test-token-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_runs_the_plugin_to_list_explain_pin_and_replay_targets() {
    on_simulator("kubectl-plugin", "the plugin talks to the hub, not to the API server", async |env: &Env| {
        plugin(env).await
    })
    .await;
}

fn kubectl() -> Option<PathBuf> {
    ["/usr/bin/kubectl", "/usr/local/bin/kubectl"].iter().map(PathBuf::from).find(|p| p.exists())
}

/// Runs `kubectl scalehub ARGS` with the plugin on PATH; (exit code, stdout, stderr).
fn run(
    bin_dir: &Path,
    kubectl: &Path,
    server: &str,
    args: &[&str],
    kubeconfig: &Path,
) -> anyhow::Result<(i32, String, String)> {
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(kubectl)
        .arg("scalehub")
        .args(args)
        .env("PATH", path)
        .env("SCALEHUB_URL", server)
        .env("SCALEHUB_TOKEN", TOKEN)
        .env("XDG_CONFIG_HOME", bin_dir)
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", kubeconfig)
        .output()
        .context("run kubectl scalehub")?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

async fn plugin(env: &Env) -> anyhow::Result<()> {
    let Some(kubectl) = kubectl() else {
        eprintln!("SKIPPED kubectl plugin test: kubectl is not installed");
        return Ok(());
    };
    // The plugin is the scalehub binary under kubectl's plugin name.
    let bin_dir = env.path("bin");
    std::fs::create_dir_all(&bin_dir)?;
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_scalehub"), bin_dir.join("kubectl-scalehub"))?;

    let tokens = env.path("tokens");
    std::fs::write(&tokens, format!("ops:{TOKEN}\n"))?;
    let profile = json!({"metric": sh("echo 3", 5_000), "evaluate": sh(r#"cat >/dev/null; echo '{"targetReplicas": 3}'"#, 5_000), "runMode": "per-resource"});
    let mut config = env.config(json!({"three": profile}));
    config["api"] = json!({"tokenFile": tokens});
    let hub = env.start_hub(&config, "hub.db", "hub-a").await?;
    let server = format!("http://{}", hub.addr);
    create(
        env,
        &deployment("web", 1, opted_in(&[("scalehub.io/profile", "three"), ("scalehub.io/max-replicas", "5")])),
    )
    .await?;
    let mut api =
        deployment("api", 1, opted_in(&[("scalehub.io/profile", "three"), ("scalehub.io/max-replicas", "5")]));
    api.metadata.labels = Some([("tier".to_owned(), "backend".to_owned())].into());
    create(env, &api).await?;
    env.wait_replicas("web", 3).await?;
    let ns = env.ns.as_str();

    // get: a kubectl-like table; -o json the API's items.
    let (code, table) = eventually("web in `kubectl scalehub get`", WAIT, async || {
        let (code, out, err) = run(&bin_dir, &kubectl, &server, &["get", "-n", ns], &env.kubeconfig)?;
        let both = out.contains("web") && out.contains("api") && out.matches("→ 3").count() == 2;
        Ok(both.then_some((code, format!("{out}{err}"))))
    })
    .await?;
    ensure!(code == 0, "get exited {code}: {table}");
    ensure!(table.starts_with("NAMESPACE") && table.contains("Deployment") && table.contains("active"), "{table}");
    let (code, out, err) = run(&bin_dir, &kubectl, &server, &["get", "-A", "-o", "json"], &env.kubeconfig)?;
    ensure!(code == 0, "get -o json: {err}");
    let doc: Value = serde_json::from_str(&out).context("get -o json is JSON")?;
    ensure!(doc["items"].as_array().is_some_and(|i| i.iter().any(|t| t["name"] == "web")), "{out}");

    // -l: the labelled workloads, asked of the cluster through kubectl.
    let (code, out, err) = run(&bin_dir, &kubectl, &server, &["get", "-n", ns, "-l", "tier=backend"], &env.kubeconfig)?;
    ensure!(code == 0, "get -l: {err}");
    ensure!(out.contains("api") && !out.contains("web"), "get -l tier=backend: {out}");
    let (code, _, err) = run(&bin_dir, &kubectl, &server, &["get", "-n", ns, "-l", "app in (("], &env.kubeconfig)?;
    ensure!(code == 1 && err.starts_with("error: kubectl:"), "a bad selector: {code} {err}");

    // why: the decision with its reasons and hooks.
    let (code, out, err) = run(&bin_dir, &kubectl, &server, &["why", "deploy/web", "-n", ns], &env.kubeconfig)?;
    ensure!(code == 0, "why exited {code}: {err}");
    ensure!(out.contains(&format!("{ns}/Deployment/web")) && out.contains("scaled"), "why: {out}");
    ensure!(out.contains("hook metric (shell): exit 0"), "why shows the hooks: {out}");

    // -w follows the stream: start it, then pin, and the pin's decision shows up as a line.
    let mut watch = Command::new(&kubectl)
        .args(["scalehub", "get", "-n", ns, "-w"])
        .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()))
        .env("SCALEHUB_URL", &server)
        .env("XDG_CONFIG_HOME", &bin_dir)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("kubectl scalehub get -w")?;
    let stdout = watch.stdout.take().context("the watch's stdout")?;
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The table comes first; then the stream is open.
    let first = lines_rx.recv_timeout(WAIT).context("the watch printed nothing")?;
    ensure!(first.starts_with("NAMESPACE"), "the watch's first line: {first}");

    // pin, and the hub holds it; unpin.
    let (code, out, err) = run(
        &bin_dir,
        &kubectl,
        &server,
        &["pin", "deploy/web", "2", "--for", "10m", "--reason", "plugin test", "-n", ns],
        &env.kubeconfig,
    )?;
    ensure!(code == 0 && out.contains("pinned to 2"), "pin: {code} {out} {err}");
    env.wait_replicas("web", 2).await?;
    let followed = (0..200).find_map(|_| {
        let line = lines_rx.recv_timeout(std::time::Duration::from_millis(100)).ok()?;
        (line.starts_with(&format!("{ns}/Deployment/web")) && line.contains("pinned")).then_some(line)
    });
    let _ = watch.kill();
    let _ = watch.wait();
    ensure!(followed.is_some(), "the watch never printed web's pinned decision");
    // bounds and pause replace the pin (one override per target).
    let (code, out, err) = run(
        &bin_dir,
        &kubectl,
        &server,
        &["bounds", "deploy/web", "--max", "2", "--for", "5m", "--reason", "plugin test", "-n", ns],
        &env.kubeconfig,
    )?;
    ensure!(code == 0 && out.contains("bounds …–2"), "bounds: {code} {out} {err}");
    let (code, out, err) = run(
        &bin_dir,
        &kubectl,
        &server,
        &["pause", "deploy/web", "--direction", "up", "--for", "5m", "--reason", "plugin test", "-n", ns],
        &env.kubeconfig,
    )?;
    ensure!(code == 0 && out.contains("paused (up)"), "pause: {code} {out} {err}");
    let (code, _, err) =
        run(&bin_dir, &kubectl, &server, &["bounds", "deploy/web", "--reason", "x", "-n", ns], &env.kubeconfig)?;
    ensure!(code == 2 && err.contains("--min, --max"), "bounds without bounds: {code} {err}");
    let (code, out, _) = run(&bin_dir, &kubectl, &server, &["unpin", "deploy/web", "-n", ns], &env.kubeconfig)?;
    ensure!(code == 0 && out.contains("override removed"), "unpin: {out}");
    env.wait_replicas("web", 3).await?;

    // evaluate --dry-run, and a replay's summary.
    let (code, out, err) =
        run(&bin_dir, &kubectl, &server, &["evaluate", "deploy/web", "--dry-run", "-n", ns], &env.kubeconfig)?;
    ensure!(code == 0 && out.contains("asks for 3 replicas (dry run"), "evaluate: {code} {out} {err}");
    let (code, out, err) = run(
        &bin_dir,
        &kubectl,
        &server,
        &["replay", "deploy/web", "--since", "1h", "--max", "2", "-n", ns],
        &env.kubeconfig,
    )?;
    ensure!(code == 0 && out.contains("WHAT IF") && out.contains("replica-hours"), "replay: {code} {out} {err}");
    let highest = out.lines().find(|l| l.starts_with("highest")).context("a highest row")?;
    ensure!(highest.split_whitespace().nth(1) == Some("2"), "max 2 caps the replay: {highest}");
    // Another profile's calculation needs one without an evaluate hook: `three` has hooks.
    let (code, _, err) = run(
        &bin_dir,
        &kubectl,
        &server,
        &["replay", "deploy/web", "--calculation", "three", "-n", ns],
        &env.kubeconfig,
    )?;
    ensure!(code == 1 && err.contains("policy.calculation.profile"), "replay --calculation: {code} {err}");

    // Errors: one line and an exit code. 1: the hub refused; 2: usage; 3: unreachable.
    let (code, _, err) = run(&bin_dir, &kubectl, &server, &["why", "deploy/nope", "-n", ns], &env.kubeconfig)?;
    ensure!(
        code == 1 && err.lines().count() == 1 && err.contains("no target") && err.contains("HTTP 404"),
        "{code} {err}"
    );
    let (code, _, err) = run(&bin_dir, &kubectl, &server, &["why", "web"], &env.kubeconfig)?;
    ensure!(code == 2 && err.contains("KIND/NAME"), "{code} {err}");
    let (code, _, err) = run(&bin_dir, &kubectl, "http://127.0.0.1:9", &["get"], &env.kubeconfig)?;
    ensure!(code == 3 && err.contains("cannot reach the hub"), "{code} {err}");
    ensure!(!err.contains(TOKEN), "an error printed the token: {err}");
    hub.shutdown().await;
    Ok(())
}

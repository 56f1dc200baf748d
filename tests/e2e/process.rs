//! `scalehub run` as a child process, for tests where the process itself is the point.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::harness::{Env, WAIT};

/// A `scalehub run` child process; killed (SIGKILL) when dropped.
pub struct HubProcess {
    pub child: Child,
    /// Where its API listens.
    pub addr: std::net::SocketAddr,
    log: std::path::PathBuf,
}

impl HubProcess {
    /// The end of the hub's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Starts `scalehub run` — after `wrapper` (e.g. `unshare …`) when it is not empty — and waits
/// until it says where it listens.
pub async fn spawn_hub(
    env: &Env,
    wrapper: &[&str],
    config: &Path,
    db: &str,
    log_name: &str,
) -> anyhow::Result<HubProcess> {
    let log = env.path(log_name);
    let stderr = std::fs::File::create(&log).context("create the hub's log file")?;
    let hub = env!("CARGO_BIN_EXE_scalehub");
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(hub);
            command
        }
        None => Command::new(hub),
    };
    let mut child = command
        .arg("run")
        .arg("--kubeconfig")
        .arg(&env.kubeconfig)
        .arg("--config")
        .arg(config)
        .args(["--database", db, "--listen", "127.0.0.1:0", "--lease-namespace", &env.ns, "--lease-seconds", "2"])
        .env("RUST_LOG", "info,kube_runtime=warn,sqlx=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .context("spawn scalehub run")?;
    let stdout = child.stdout.take().context("the hub's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let started = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(addr) = line.strip_prefix("scalehub listening on http://") {
                return Ok::<_, std::io::Error>(addr.parse().ok());
            }
        }
        Ok(None)
    })
    .await;
    let mut hub = HubProcess { child, addr: ([127, 0, 0, 1], 0).into(), log };
    match started {
        Ok(Ok(Some(addr))) => hub.addr = addr,
        Ok(Ok(None)) => bail!("scalehub run exited before listening; its log:\n{}", hub.log_tail()),
        Ok(Err(e)) => bail!("reading the hub's stdout: {e}"),
        Err(_) => bail!("scalehub run did not start within {WAIT:?}; its log:\n{}", hub.log_tail()),
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(hub)
}

/// One process, as the host's `/proc` shows it.
#[derive(Debug)]
pub struct Proc {
    #[expect(dead_code, reason = "shown in failure messages")]
    pub pid: u32,
    pub comm: String,
    pub state: char,
}

/// Every descendant of `root`, from the host's `/proc`.
pub fn descendants(root: u32) -> Vec<Proc> {
    let mut parent_of = HashMap::new();
    let mut procs = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some((head, rest)), Some(open)) = (stat.rsplit_once(") "), stat.find('(')) else {
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let Some(ppid) = fields.next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        parent_of.insert(pid, ppid);
        procs.insert(pid, Proc { pid, comm: head[open + 1..].to_owned(), state });
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (&pid, &ppid) in &parent_of {
            if ppid == parent
                && let Some(p) = procs.remove(&pid)
            {
                frontier.push(pid);
                out.push(p);
            }
        }
    }
    out
}

/// The pid of `parent`'s only child.
pub fn child_of(parent: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// One HTTP/1.1 request to the hub (`Connection: close`); the status and the JSON body
/// (`Null` when it is not JSON).
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body) = http_text(addr, method, path, token, body).await?;
    Ok((status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)))
}

/// [`http`], with the body as text (`/metrics`).
pub async fn http_text(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, String)> {
    let authorization = token.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("Authorization", a.as_str())).collect();
    let (status, _, body) = http_with_headers(addr, method, path, &headers, body).await?;
    Ok((status, body))
}

/// One HTTP/1.1 request with these extra headers; the status, the answer's headers (names in
/// lowercase) and its body as text.
pub async fn http_with_headers(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, HashMap<String, String>, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let response = tokio::time::timeout(WAIT, async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    })
    .await
    .with_context(|| format!("{method} {path} timed out"))??;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").with_context(|| format!("{method} {path}: no headers: {text}"))?;
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("no status")?;
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    anyhow::ensure!(
        !headers.get("transfer-encoding").is_some_and(|v| v.contains("chunked")),
        "{method} {path}: a chunked answer (not expected from a JSON handler)"
    );
    Ok((status, headers, body.to_owned()))
}

//! The REST client of `kubectl scalehub`: where the hub is, its token, requests and the stream.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::CtlArgs;

/// Where `kubectl port-forward svc/scalehub 8080` puts the hub.
const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
/// One request at most (a replay of a day reads up to 20,000 ticks).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a command failed; each has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The command line or the config file is wrong.
    #[error("{0}")]
    Usage(String),
    /// The hub answered with an error.
    #[error("{message} (HTTP {status})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The hub's `error` message.
        message: String,
    },
    /// The hub could not be reached.
    #[error("cannot reach the hub at {server}: {reason}")]
    Unreachable {
        /// The URL tried.
        server: String,
        /// Why.
        reason: String,
    },
    /// kubectl (for `-l`) failed.
    #[error("kubectl: {0}")]
    Kubectl(String),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Io(#[from] std::io::Error),
}

impl CtlError {
    /// 1: the hub refused; 2: bad usage; 3: unreachable.
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Api { .. } | CtlError::Kubectl(_) | CtlError::Io(_) => 1,
            CtlError::Usage(_) => 2,
            CtlError::Unreachable { .. } => 3,
        }
    }
}

/// `$XDG_CONFIG_HOME/scalehub/ctl.yaml` (or `~/.config/...`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConfigFile {
    server: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
}

fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(base.join("scalehub").join("ctl.yaml"))
}

fn read_config() -> Result<ConfigFile, CtlError> {
    let Some(path) = config_path() else { return Ok(ConfigFile::default()) };
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_saphyr::from_str(&text).map_err(|e| CtlError::Usage(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(e) => Err(CtlError::Usage(format!("{}: {e}", path.display()))),
    }
}

fn read_token(path: &Path) -> Result<String, CtlError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CtlError::Usage(format!("token file {}: {e}", path.display())))?;
    Ok(text.trim().to_owned())
}

/// A hub's API.
pub struct Client {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl Client {
    /// The hub and token the flags, the environment and the config file name.
    pub async fn new(args: &CtlArgs) -> Result<Client, CtlError> {
        let file = read_config()?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let server = args
            .server
            .clone()
            .or_else(|| env("SCALEHUB_URL"))
            .or(file.server)
            .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
        let server = server.trim_end_matches('/').to_owned();
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(CtlError::Usage(format!("the hub's URL must start with http:// or https://, not {server:?}")));
        }
        let token = match (&args.token, &args.token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(path)) => Some(read_token(path)?),
            (None, None) => match (env("SCALEHUB_TOKEN"), env("SCALEHUB_TOKEN_FILE")) {
                (Some(token), _) => Some(token),
                (None, Some(path)) => Some(read_token(Path::new(&path))?),
                (None, None) => match (file.token, file.token_file) {
                    (Some(token), _) => Some(token),
                    (None, Some(path)) => Some(read_token(&path)?),
                    (None, None) => None,
                },
            },
        };
        let tls = scalehub_hooks::TlsFiles {
            ca_cert: args.ca_cert.clone().or(file.ca_cert),
            client_cert: None,
            client_key: None,
        };
        let http = scalehub_hooks::tls::http_client(&tls, None)
            .await
            .map_err(|e| CtlError::Usage(format!("the http client: {e}")))?;
        Ok(Client { http, server, token: token.filter(|t| !t.is_empty()) })
    }

    fn request(&self, method: reqwest::Method, path: &str, query: &[(&str, String)]) -> reqwest::RequestBuilder {
        let query: Vec<String> =
            query.iter().map(|(k, v)| format!("{}={}", super::encode(k), super::encode(v))).collect();
        let url = if query.is_empty() {
            format!("{}{path}", self.server)
        } else {
            format!("{}{path}?{}", self.server, query.join("&"))
        };
        let mut req = self.http.request(method, url);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    fn unreachable(&self, e: &reqwest::Error) -> CtlError {
        // reqwest's message names the URL without the query; the token is in a header only.
        let reason = if e.is_timeout() { "timed out".to_owned() } else { error_chain(e) };
        CtlError::Unreachable { server: self.server.clone(), reason }
    }

    /// `GET path?query` as JSON.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, CtlError> {
        self.send("GET", path, query, None).await
    }

    /// A request with an optional JSON body; the answer as JSON (null when empty).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CtlError> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| CtlError::Usage(e.to_string()))?;
        let mut req = self.request(method, path, query).timeout(TIMEOUT);
        if let Some(body) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let res = req.send().await.map_err(|e| self.unreachable(&e))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| self.unreachable(&e))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !status.is_success() {
            let message = value["error"].as_str().map(str::to_owned).unwrap_or_else(|| match &value {
                Value::String(s) => s.lines().next().unwrap_or_default().to_owned(),
                _ => status.canonical_reason().unwrap_or("error").to_owned(),
            });
            return Err(CtlError::Api { status: status.as_u16(), message });
        }
        Ok(value)
    }

    /// Follows `/api/v1/stream`, calling `on_event(name, data)` for each event of `namespace`
    /// (all when `None`), until the hub ends the stream.
    pub async fn follow(
        &self,
        namespace: Option<&str>,
        mut on_event: impl FnMut(&str, &Value) -> std::io::Result<()>,
    ) -> Result<(), CtlError> {
        let mut res =
            self.request(reqwest::Method::GET, "/api/v1/stream", &[]).send().await.map_err(|e| self.unreachable(&e))?;
        if !res.status().is_success() {
            let status = res.status().as_u16();
            let text = res.text().await.unwrap_or_default();
            let message =
                serde_json::from_str::<Value>(&text).ok().and_then(|v| v["error"].as_str().map(str::to_owned));
            return Err(CtlError::Api { status, message: message.unwrap_or(text) });
        }
        let mut buffer = String::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| self.unreachable(&e))? {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let (mut event, mut data) = ("message", String::new());
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = if name.trim() == "decision" {
                            "decision"
                        } else if name.trim() == "target" {
                            "target"
                        } else {
                            "other"
                        };
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                let Ok(value) = serde_json::from_str::<Value>(&data) else { continue };
                let ns = super::render::event_key(&value).map(|(ns, _, _)| ns);
                if namespace.is_none_or(|want| ns == Some(want)) && event != "other" {
                    on_event(event, &value)?;
                }
            }
        }
        Ok(())
    }
}

/// An error and its causes on one line (hyper's and reqwest's own messages name no cause).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

//! The http-evaluate example's hook service, started on loopback and called over HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use super::*;

/// The http-evaluate example's server, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(python: &Path) -> Self {
        let mut child = Command::new(python)
            .arg(root().join("examples/http-evaluate/server.py"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .env_remove("PER_REPLICA")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
        Self { child, port }
    }

    /// One HTTP/1.1 request; returns the status code and the body.
    fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.split(' ').nth(1).unwrap().parse().unwrap(), body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn http_evaluate_server_answers_the_cpa_payloads_as_bodies() {
    let Some(python) = python3() else { return };
    let server = Server::start(&python);
    assert_eq!(server.call("GET", "/healthz", ""), (200, "ok".into()));
    let metric_body = json!({"resource": deployment("worker", json!({})), "runType": "scaler"}).to_string();
    assert_eq!(server.call("POST", "/metric", &metric_body), (200, "0".into()));
    assert_eq!(server.call("PUT", "/queue/default/worker", "42").0, 204);
    let (code, length) = server.call("POST", "/metric", &metric_body);
    assert_eq!((code, length.as_str()), (200, "42"));

    let evaluate = |params: Value| {
        let body = json!({"metrics": [{"resource": "worker", "value": length}], "params": params, "runType": "scaler"});
        let (code, body) = server.call("POST", "/evaluate", &body.to_string());
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    assert_eq!(evaluate(json!({})), json!({"targetReplicas": 5}));
    assert_eq!(evaluate(json!({"perReplica": "6"})), json!({"targetReplicas": 7}));
}

#[test]
fn http_evaluate_server_rejects_bad_input_with_a_status_outside_success_codes() {
    let Some(python) = python3() else { return };
    let server = Server::start(&python);
    let bad_metric = json!({"metrics": [{"resource": "worker", "value": "lots"}], "runType": "scaler"});
    let (code, body) = server.call("POST", "/evaluate", &bad_metric.to_string());
    assert_eq!(code, 400);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    assert_eq!(server.call("POST", "/evaluate", "not json").0, 400);
    assert_eq!(server.call("POST", "/metric", "{}").0, 400);
    assert_eq!(server.call("PUT", "/queue/default/worker", "-1").0, 400);
    assert_eq!(server.call("GET", "/nope", "").0, 404);
}

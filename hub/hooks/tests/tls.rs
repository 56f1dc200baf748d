//! HTTP hooks over TLS with the CPA's `caCert` / `clientCert` / `clientKey`, against a local
//! mutual-TLS server. Certificates are made with the `openssl` CLI; without it the tests skip.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::TempDir;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use scalehub_hooks::{HookError, HookRunner, HookRunnerConfig, HookSpec, HttpSpec, TlsFiles};
use serde_json::json;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
struct Pki {
    dir: TempDir,
}

impl Pki {
    /// Creates the files, or `None` when `openssl` is not installed.
    fn create() -> Option<Self> {
        if Command::new("openssl").arg("version").output().is_err() {
            eprintln!("openssl not found; skipping the TLS tests");
            return None;
        }
        let dir = TempDir::new("pki");
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir.path()).output().unwrap();
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=scalehub test ca",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat());
        for (name, usage, san) in
            [("server", "serverAuth", "subjectAltName=IP:127.0.0.1"), ("client", "clientAuth", "")]
        {
            run(&[
                &["req"][..],
                &ec,
                &["-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr"), "-subj", &format!("/CN={name}")],
            ]
            .concat());
            let ext = format!("basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n{san}\n");
            dir.write(&format!("{name}.ext"), &ext);
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        Some(Pki { dir })
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// TLS files for the hook: the CA, plus the client certificate when `client` is set.
    fn hook_files(&self, client: bool) -> TlsFiles {
        TlsFiles {
            ca_cert: Some(self.file("ca.pem")),
            client_cert: client.then(|| self.file("client.pem")),
            client_key: client.then(|| self.file("client.key")),
        }
    }
}

/// Starts a blocking HTTPS server that requires a client certificate signed by the CA and
/// answers every request with `200 ok`. Returns its base URL.
fn start_server(pki: &Pki) -> String {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(&pki.file("ca.pem")) {
        roots.add(cert).unwrap();
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.file("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&pki.file("server.pem")), key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Read the request head; a failed handshake ends here.
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            if request.is_empty() {
                continue;
            }
            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    format!("https://{addr}")
}

fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path).unwrap().collect::<Result<_, _>>().unwrap()
}

fn spec(url: &str, tls: TlsFiles) -> HookSpec {
    let mut spec = HttpSpec::new("POST", format!("{url}/hook"), Duration::from_secs(5));
    spec.tls = tls;
    HookSpec::Http(spec)
}

#[tokio::test]
async fn mutual_tls_with_the_configured_ca_and_client_certificate_succeeds() {
    let Some(pki) = Pki::create() else { return };
    let url = start_server(&pki);
    let runner = HookRunner::new(HookRunnerConfig::default());
    for _ in 0..2 {
        let out = runner.run(&spec(&url, pki.hook_files(true)), &json!({})).await.unwrap();
        assert_eq!(out.stdout, "ok");
    }
    // One client for the TLS config, reused by the second run.
    assert_eq!(runner.http_clients(), 1);
}

#[tokio::test]
async fn each_distinct_tls_config_gets_its_own_cached_client() {
    let Some(pki) = Pki::create() else { return };
    let url = start_server(&pki);
    let runner = HookRunner::new(HookRunnerConfig::default());

    // Trusted CA but no client certificate: the server refuses the handshake.
    let failure = runner.run(&spec(&url, pki.hook_files(false)), &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::HttpTransport(_)), "{:?}", failure.error);

    assert!(failure.to_string().contains("CertificateRequired"), "{failure}");
    // The platform roots do not know the test CA.
    let failure = runner.run(&spec(&url, TlsFiles::default()), &json!({})).await.unwrap_err();
    assert!(matches!(failure.error, HookError::HttpTransport(_)), "{:?}", failure.error);

    assert!(failure.to_string().contains("UnknownIssuer"), "{failure}");
    runner.run(&spec(&url, pki.hook_files(true)), &json!({})).await.unwrap();
    assert_eq!(runner.http_clients(), 3);
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_is_a_tls_error() {
    let Some(pki) = Pki::create() else { return };
    let mut files = pki.hook_files(true);
    files.client_key = Some(pki.file("server.key"));
    let failure = HookRunner::new(HookRunnerConfig::default())
        .run(&spec("https://127.0.0.1:1", files), &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(failure.error, HookError::Tls(_)), "{:?}", failure.error);
    assert!(failure.to_string().starts_with("invalid tls configuration: "), "{failure}");
    assert_eq!(failure.error.reason(), "tls");
}

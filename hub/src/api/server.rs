//! The HTTP server: axum's router on hyper, with the limits a hub that every target depends on
//! needs and `axum::serve` does not set:
//! - a client has [`Limits::header_timeout`] to send a request's headers (a connection that
//!   sends nothing is closed, so idle and slow clients cannot hold connections for long);
//! - at most [`Limits::connections`] connections are open at once, and never more than the
//!   descriptor limit leaves after [`RESERVED_DESCRIPTORS`] for hooks and the database;
//! - at the cap, a new connection evicts the oldest one that has not yet sent a whole request
//!   (an idle or slowloris client), so a probe or a real client is served at once instead of
//!   waiting for a header timeout. Only when every open connection is inside a request does a
//!   new one wait (in the listen backlog).
//!
//! The soft descriptor limit is raised to the hard one at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Descriptors kept free for everything but connections: hook pipes, the database, the
/// API-server client, the listener.
pub const RESERVED_DESCRIPTORS: usize = 256;

/// The fewest connections the server allows, however low the descriptor limit.
const MIN_CONNECTIONS: usize = 16;

/// The server's limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Time to send a request's headers, also between requests on a kept-alive connection.
    pub header_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog until one closes.
    pub connections: usize,
    /// How long shutdown waits for open requests (live streams end at shutdown).
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(10), connections: 512, drain: Duration::from_secs(5) }
    }
}

/// Binds `addr` (port 0 picks one) and serves `router` with `limits` until `shutdown`;
/// returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    router: Router,
    limits: Limits,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    serve_on(listener, router, limits, shutdown);
    Ok(local)
}

/// Serves `router` on a bound `listener` with `limits` until `shutdown`.
pub fn serve_on(listener: TcpListener, router: Router, mut limits: Limits, shutdown: CancellationToken) {
    let descriptors = raise_descriptor_limit();
    if let Some(soft) = descriptors {
        let fits = soft.saturating_sub(RESERVED_DESCRIPTORS).max(MIN_CONNECTIONS);
        if fits < limits.connections {
            tracing::info!(open_files = soft, connections = fits, "few file descriptors: fewer connections allowed");
            limits.connections = fits;
        }
    }
    tokio::spawn(accept(listener, router, limits, shutdown));
}

/// The open connections, oldest first, for eviction at the cap.
#[derive(Default)]
struct Open {
    next: u64,
    connections: BTreeMap<u64, Connection>,
}

struct Connection {
    /// Set once the connection's first request reached the router.
    requested: Arc<AtomicBool>,
    /// Closes the connection.
    evict: CancellationToken,
}

impl Open {
    /// Closes the oldest connection that has not sent a whole request yet; whether there was one.
    fn evict_oldest_idle(&mut self) -> bool {
        let victim = self.connections.iter().find(|(_, c)| !c.requested.load(Ordering::Acquire)).map(|(id, _)| *id);
        match victim.and_then(|id| self.connections.remove(&id)) {
            Some(connection) => {
                connection.evict.cancel();
                true
            }
            None => false,
        }
    }
}

async fn accept(listener: TcpListener, router: Router, limits: Limits, shutdown: CancellationToken) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(limits.header_timeout));
    let slots = Arc::new(Semaphore::new(limits.connections.max(1)));
    let open = Arc::new(Mutex::new(Open::default()));
    let graceful = GracefulShutdown::new();
    loop {
        // Accept first: at the cap, the new connection may take an idle one's place.
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was accepted: wait a
                    // moment rather than spin, as axum::serve does.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let evicted = open.lock().map(|mut o| o.evict_oldest_idle()).unwrap_or(false);
                if evicted {
                    tracing::debug!("connection cap reached: closed the oldest connection without a request");
                }
                // The evicted connection frees its slot as it closes; without one, wait for any.
                let slot = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    slot = slots.clone().acquire_owned() => slot,
                };
                let Ok(slot) = slot else { break };
                slot
            }
        };
        let requested = Arc::new(AtomicBool::new(false));
        let evict = CancellationToken::new();
        let id = match open.lock() {
            Ok(mut o) => {
                let id = o.next;
                o.next += 1;
                o.connections.insert(id, Connection { requested: requested.clone(), evict: evict.clone() });
                id
            }
            Err(_) => break,
        };
        let seen = requested.clone();
        let service = tower::ServiceExt::map_request(router.clone(), move |req: axum::http::Request<_>| {
            seen.store(true, Ordering::Release);
            req
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        let open = open.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection => if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                },
                () = evict.cancelled() => {}
            }
            if let Ok(mut o) = open.lock() {
                o.connections.remove(&id);
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown()).await.is_err() {
        tracing::warn!(drain = ?limits.drain, "connections still open at shutdown were cut");
    }
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime does: the default
/// soft limit (often 1,024) is a relic, and a hub holds connections, hook pipes and the
/// database at once. Returns the soft limit now in force.
fn raise_descriptor_limit() -> Option<usize> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            } else {
                tracing::debug!("the open-files limit could not be raised");
            }
        }
    }
    usize::try_from(limit.rlim_cur).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn server(limits: Limits) -> (SocketAddr, CancellationToken) {
        let router = Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
        let shutdown = CancellationToken::new();
        let addr = serve("127.0.0.1:0".parse().unwrap(), router, limits, shutdown.clone()).await.unwrap();
        (addr, shutdown)
    }

    async fn healthz(addr: SocketAddr) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).await.unwrap();
        text
    }

    #[tokio::test]
    async fn a_client_that_sends_no_headers_is_cut_off_and_frees_its_slot() {
        let limits = Limits { header_timeout: Duration::from_millis(300), connections: 2, ..Limits::default() };
        let (addr, shutdown) = server(limits).await;
        // Two idle clients take both slots...
        let mut idle = Vec::new();
        for _ in 0..2 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
            idle.push(stream);
        }
        // ...and are closed once the header timeout passes, so a probe still gets through.
        let answer = tokio::time::timeout(Duration::from_secs(10), healthz(addr)).await.expect("the probe waited");
        assert!(answer.ends_with("ok"), "{answer}");
        for mut stream in idle {
            let mut rest = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
            assert!(read.is_ok(), "an idle client was never cut off");
        }
        shutdown.cancel();
    }

    #[tokio::test]
    async fn at_the_cap_a_new_client_evicts_the_oldest_that_sent_no_whole_request() {
        let limits = Limits { header_timeout: Duration::from_secs(30), connections: 2, ..Limits::default() };
        let (addr, shutdown) = server(limits).await;
        let mut oldest = tokio::net::TcpStream::connect(addr).await.unwrap();
        oldest.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut newer = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Both slots are held by clients that never finish a request; a probe is served at once.
        let answer = tokio::time::timeout(Duration::from_secs(2), healthz(addr)).await.expect("the probe waited");
        assert!(answer.ends_with("ok"), "{answer}");
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(2), oldest.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "the oldest idle client was not the one evicted");
        let mut byte = [0u8; 1];
        let still_open = tokio::time::timeout(Duration::from_millis(300), newer.read(&mut byte)).await;
        assert!(still_open.is_err(), "the newer idle client was evicted too");
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_connection_inside_a_request_is_not_evicted_and_the_next_one_waits() {
        let router = Router::new().route("/healthz", axum::routing::get(|| async { "ok" })).route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "slow"
            }),
        );
        let shutdown = CancellationToken::new();
        let limits = Limits { header_timeout: Duration::from_secs(30), connections: 1, ..Limits::default() };
        let addr = serve("127.0.0.1:0".parse().unwrap(), router, limits, shutdown.clone()).await.unwrap();
        let slow = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut text = String::new();
            stream.read_to_string(&mut text).await.unwrap();
            text
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let waiting = tokio::spawn(healthz(addr));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "a second connection was served beyond the cap of one");
        let answer = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("never served").unwrap();
        assert!(answer.ends_with("ok"), "{answer}");
        assert!(slow.await.unwrap().ends_with("slow"), "the request in progress was cut");
        shutdown.cancel();
    }
}

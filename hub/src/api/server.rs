//! The HTTP server: axum's router on hyper, with the limits a hub that every target depends on
//! needs and `axum::serve` does not set: a client has [`Limits::header_timeout`] to send a
//! request's headers (a connection that sends nothing is closed, so idle and slow clients
//! cannot hold connections), and at most [`Limits::connections`] connections are open at once,
//! well below the process's file-descriptor limit, so hooks and the database always have
//! descriptors. The soft descriptor limit is raised to the hard one at start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

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
    raise_descriptor_limit();
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(accept(listener, router, limits, shutdown));
    Ok(local)
}

async fn accept(listener: TcpListener, router: Router, limits: Limits, shutdown: CancellationToken) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(limits.header_timeout));
    let slots = Arc::new(Semaphore::new(limits.connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
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
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
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
/// database at once.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::debug!("the open-files limit could not be raised");
            }
        }
    }
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
    async fn connections_beyond_the_cap_wait_instead_of_exhausting_descriptors() {
        let limits = Limits { header_timeout: Duration::from_secs(30), connections: 1, ..Limits::default() };
        let (addr, shutdown) = server(limits).await;
        let mut holder = tokio::net::TcpStream::connect(addr).await.unwrap();
        holder.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let waiting = tokio::spawn(healthz(addr));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "a second connection was served beyond the cap of one");
        drop(holder);
        let answer = tokio::time::timeout(Duration::from_secs(10), waiting).await.expect("never served").unwrap();
        assert!(answer.ends_with("ok"), "{answer}");
        shutdown.cancel();
    }
}

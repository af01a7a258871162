//! The accept loop: TCP connections in, HTTP/1 (and WebSocket upgrades) out.
//!
//! Banter's own instead of `axum::serve` for two things that one does not
//! offer:
//!
//! - a **header-read timeout**. `axum::serve` gives hyper no timer, so a
//!   connection that opens and sends nothing, or trickles a request head a
//!   byte at a time, is kept forever; enough of them exhaust file
//!   descriptors. Here hyper drops a connection whose request head is not
//!   complete within `handshake_timeout`.
//! - the **peer address** on every request ([`axum::extract::ConnectInfo`]),
//!   which the per-address limits need.
//!
//! TCP_NODELAY is set on every accepted socket: chat frames are small and
//! latency is the point, and Nagle's algorithm would hold a frame back until
//! the previous one is acknowledged (with delayed ACKs, up to 40 ms).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo, http::Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;
use tracing::{debug, warn};

use super::client_addr::{ClientAddr, TrustedProxies};

/// How long to back off when accepting fails for lack of resources (out of
/// file descriptors), instead of spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` fires, then asks every HTTP
/// connection to finish its current request. Returns the tracker of those
/// connections so the caller can wait for them with its own deadline.
/// Upgraded sockets are not among them: once upgraded they belong to the
/// connection tasks, which shut down on their own.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    handshake_timeout: Duration,
    proxies: Arc<TrustedProxies>,
    shutdown: CancellationToken,
) -> TaskTracker {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(handshake_timeout);
    let tracker = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Per-connection errors (the peer reset before we
                    // accepted) are nothing to wait on; the rest (EMFILE)
                    // clear up as connections close.
                    debug!(%err, "accept failed");
                    if !is_per_connection(&err) {
                        warn!(%err, "cannot accept connections; retrying shortly");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        tracker.spawn(serve_connection(
            http.clone(),
            tcp,
            peer,
            app.clone(),
            Arc::clone(&proxies),
            shutdown.clone(),
        ));
    }
    tracker.close();
    tracker
}

async fn serve_connection(
    http: hyper::server::conn::http1::Builder,
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    proxies: Arc<TrustedProxies>,
    shutdown: CancellationToken,
) {
    if let Err(err) = tcp.set_nodelay(true) {
        debug!(%err, "cannot set TCP_NODELAY");
    }
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let mut request = request.map(Body::new);
        let client = proxies.client(peer.ip(), request.headers());
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(ClientAddr(client));
        app.clone().oneshot(request)
    });
    let connection = http
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        // Timeouts, resets and malformed requests: the peer's business.
        debug!(%peer, %err, "connection ended with an error");
    }
}

fn is_per_connection(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

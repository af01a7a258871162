//! Graceful shutdown, designed in from the start.
//!
//! The signal fires the `shutdown` token: the accept loop stops and each
//! connection's reader stops taking frames. The server then stores and
//! delivers everything accepted (`Hub::close`) and fires `goodbye`, which
//! each writer answers by writing out what is still queued for its socket
//! and closing with 1001 (see `connection`). A [`TaskTracker`] counts the
//! connection tasks, so the server can wait for the goodbyes — up to
//! [`GRACE`], after which it exits regardless.

use std::time::Duration;

use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// The longest a shutdown may take, from signal to exit. Kept under the
/// usual 10 s that process managers wait before SIGKILL.
pub(crate) const GRACE: Duration = Duration::from_secs(4);

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            warn!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => info!("Ctrl-C received, shutting down"),
        _ = terminate => info!("SIGTERM received, shutting down"),
    }
}

/// Waits for tracked connections to finish, at most until `deadline`.
pub(crate) async fn drain(connections: &TaskTracker, deadline: tokio::time::Instant) {
    connections.close();
    if tokio::time::timeout_at(deadline, connections.wait())
        .await
        .is_err()
    {
        warn!(
            remaining = connections.len(),
            "connections still open at the shutdown deadline; exiting anyway"
        );
    }
}

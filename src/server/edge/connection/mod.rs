//! One WebSocket connection, from join to goodbye.
//!
//! The socket is split in two tasks: the reader (this task) parses client
//! events and publishes them; the writer writes out what is queued for the
//! socket. Most events never reach the writer: the room hands each one to
//! the connection's `peer::Peer`, which writes it straight into the socket
//! while nothing is queued, and queues it (waking the writer) only when the
//! socket cannot take it. The two tasks meet only through the hub, the peer
//! and a small channel for replies meant for this client alone (error
//! events), so a slow client stalls nothing but its own writer.
//!
//! # Shutdown
//!
//! Two signals, in order. `shutdown`: the reader stops taking frames (what
//! it was publishing is finished first). `goodbye`, fired once everything
//! accepted is stored and handed to the rooms' members: the writer writes
//! out what is still queued, then closes with 1001. So a message someone
//! was shown as sent reaches everyone still connected before they are told
//! to go.

mod dialect;
mod peer;
mod reader;
mod writer;

use std::{fmt, sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::server::{
    chat::{member::Recipient, room::Room},
    config::SocketSettings,
    edge::{
        admission::Ticket,
        wire::{self, encode, upgrade::Upgraded},
    },
    hub::{Hub, JoinError, JoinRequest, Membership},
};
pub(crate) use dialect::Dialect;
use dialect::Speech;
use peer::Peer;

/// Error replies queued for one client. Small on purpose: a client that
/// floods bad input without reading the answers only slows its own reader.
const REPLY_QUEUE: usize = 16;
/// How long the writer gets to say goodbye once the reader has finished.
const WRITER_GRACE: Duration = Duration::from_secs(1);
/// Once the server has sent a close (bad input, flooding, too slow, going
/// away), how long to keep reading (and discarding) what the client had
/// already sent, until it answers. Dropping a socket with unread bytes
/// makes the kernel reset it, discarding the close frame just queued: the
/// client would see 1006 instead of the reason (measured: 40–65% of 1008s
/// to a flooder were lost that way).
const CLOSE_DRAIN: Duration = Duration::from_secs(1);

/// Why a connection ended; logged once per connection.
#[derive(Debug)]
enum Disconnect {
    ClientClosed(Option<u16>),
    BadInput {
        code: u16,
        reason: &'static str,
    },
    /// Closed with 1008 for going on sending over the flood limit.
    Flooding,
    /// The reader stopped because the writer had ended (and with it the
    /// membership); the writer's reason is the one logged.
    Left,
    ConnectionLost(String),
    TooSlow {
        missed: u64,
    },
    Stalled {
        after: Duration,
    },
    Unresponsive {
        after: Duration,
    },
    ServerShutdown,
}

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disconnect::ClientClosed(Some(code)) => write!(f, "client closed ({code})"),
            Disconnect::ClientClosed(None) => write!(f, "client closed"),
            Disconnect::ConnectionLost(err) => write!(f, "connection lost: {err}"),
            Disconnect::TooSlow { missed } => write!(f, "too slow: {missed} events behind"),
            Disconnect::BadInput { code, reason } => write!(f, "closed with {code}: {reason}"),
            Disconnect::Flooding => write!(f, "closed with 1008 for flooding"),
            Disconnect::Left => write!(f, "left the room"),
            Disconnect::Stalled { after } => {
                write!(f, "stopped reading: nothing written for {after:?}")
            }
            Disconnect::Unresponsive { after } => write!(f, "no answer to a ping for {after:?}"),
            Disconnect::ServerShutdown => write!(f, "server shutting down"),
        }
    }
}

/// The server's two shutdown signals, as a connection sees them. See the
/// module docs.
#[derive(Clone)]
pub(crate) struct Signals {
    /// Stop reading: the server is going away.
    pub(crate) shutdown: CancellationToken,
    /// Everything accepted is handed to the members: write out what is
    /// still queued, then close with 1001.
    pub(crate) goodbye: CancellationToken,
}

/// Largest message a client may send, whole or in fragments. Far above
/// the longest chat message, far below what would let one client tie up
/// real memory.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Runs a freshly upgraded socket until either side ends it. `ticket`
/// holds the socket's place in the connection limits until then.
pub(crate) async fn run(
    socket: Upgraded,
    request: JoinRequest,
    dialect: Dialect,
    hub: Arc<Hub>,
    signals: Signals,
    settings: SocketSettings,
    ticket: Ticket,
) {
    let Upgraded { tcp, early } = socket;
    let (read, write) = tcp.into_split();
    let mut stream = wire::Inbound::new(read, &early, MAX_MESSAGE_BYTES);
    // Copied: `early` is a view of hyper's whole read buffer (8 KiB),
    // which would otherwise stay allocated for the connection's life.
    drop(early);
    let peer = Peer::new(write, Speech::new(dialect));
    let style = request.style;
    let username = request.username.clone();
    let recipient: Arc<dyn Recipient> = Arc::clone(&peer) as _;
    let membership = match join(&hub, request, dialect, recipient).await {
        Ok(membership) => membership,
        Err(err) => {
            info!(user = %username, reason = %err, "join refused");
            let refusal = encode::close(err.close_code(), &err.to_string());
            let _ = tokio::time::timeout(CLOSE_DRAIN, async {
                if wire::write_all(peer.socket(), &refusal).await.is_ok() {
                    stream.drain().await;
                }
            })
            .await;
            return;
        }
    };
    let name = Arc::clone(membership.name());
    let room = Arc::clone(membership.room());
    info!(user = %name, room = %room.name(), presence = ?style, online = hub.len(), "connected");

    let (replies, reply_queue) = mpsc::channel(REPLY_QUEUE);
    let stop_writer = signals.goodbye.child_token();
    let mut writer = tokio::spawn(writer::write_loop(
        peer,
        membership,
        reply_queue,
        stop_writer.clone(),
        signals.goodbye,
        settings,
    ));
    let speaker = reader::Speaker {
        name: &name,
        room: &room,
        dialect,
    };
    let reader = reader::read_loop(
        &mut stream,
        speaker,
        &hub,
        replies,
        &settings,
        &ticket,
        &signals.shutdown,
    );
    let reason = tokio::select! {
        // The reader first: when both are done, its reason (bad input,
        // flooding) decides what happens to the socket and the address.
        biased;
        reason = reader => {
            match reason {
                // The writer has a close frame queued and ends once it is
                // sent; reading on until the client's answering close lets
                // that frame arrive. (The reader started the address's
                // cool-down before queueing it.)
                Disconnect::Flooding => {
                    let _ = tokio::time::timeout(CLOSE_DRAIN, stream.drain()).await;
                }
                // The refused frame cannot be decoded past, and its
                // payload may still be arriving: read on without framing.
                Disconnect::BadInput { .. } => {
                    let _ = tokio::time::timeout(CLOSE_DRAIN, stream.discard()).await;
                }
                // The writer is answering the client's close, and ends
                // once it is out.
                Disconnect::ClientClosed(_) => {}
                // The writer is saying goodbye: it waits for `goodbye` (the
                // server's deadline bounds that) or for a slow client's
                // backlog (bounded by its own timeout). Let it finish.
                Disconnect::ServerShutdown | Disconnect::Left => {
                    let written = (&mut writer).await;
                    // Its close is out (or given up on): read on until the
                    // client answers, so a reset does not overtake it.
                    let _ = tokio::time::timeout(CLOSE_DRAIN, stream.drain()).await;
                    return log_end(&name, &room, &hub, written.unwrap_or(reason));
                }
                _ => stop_writer.cancel(),
            }
            if tokio::time::timeout(WRITER_GRACE, &mut writer).await.is_err() {
                writer.abort();
                // Abort is asynchronous: wait until the task (and with it
                // the membership) is really gone before logging the count.
                let _ = writer.await;
            }
            reason
        }
        written = &mut writer => match written {
            Ok(reason) => reason,
            Err(err) => Disconnect::ConnectionLost(format!("writer task failed: {err}")),
        },
    };
    log_end(&name, &room, &hub, reason);
}

/// How many guest names a nameless plain-text client is offered before
/// its join is refused as taken (each is one of 9,000).
const GUEST_TRIES: usize = 8;

/// Joins as asked. A plain-text client that gave no name (the tutorials'
/// clients give none) is a guest, `guest-1234`, with a free number.
async fn join(
    hub: &Arc<Hub>,
    mut request: JoinRequest,
    dialect: Dialect,
    recipient: Arc<dyn Recipient>,
) -> Result<Membership, JoinError> {
    if dialect == Dialect::Json || !request.username.trim().is_empty() {
        return hub.join(request, recipient).await;
    }
    let mut tries = 0;
    loop {
        request.username = format!("guest-{}", fastrand::u16(1000..10_000));
        match hub.join(request.clone(), Arc::clone(&recipient)).await {
            Err(JoinError::Taken(_)) if tries + 1 < GUEST_TRIES => tries += 1,
            joined => return joined,
        }
    }
}

/// The writer owned the membership; it is dropped (the user has left) by
/// the time the writer task has finished or been aborted.
fn log_end(name: &str, room: &Room, hub: &Hub, reason: Disconnect) {
    info!(user = %name, room = %room.name(), %reason, online = hub.len(), "disconnected");
}

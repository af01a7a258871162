//! The writer task: what the room could not write at once, this client's
//! replies, pings, and the goodbyes.
//!
//! Most of a connection's output never passes through here: the room
//! writes each event straight into the socket while nothing is queued
//! (`super::peer`). The writer is woken only when something is queued —
//! the join snapshot, a reply, a control frame, or what a full socket
//! could not take — and writes it out once the socket is writable.

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Disconnect,
    peer::{Drained, Peer},
};
use crate::{
    protocol::close_code,
    server::{chat::frame::Reply, config::SocketSettings, edge::wire::encode, hub::Membership},
};

/// How long a close frame to a client that reads slowly may take to go out
/// before the connection is simply dropped.
const GOODBYE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the 1013 for a client that fell behind may wait to go out. Its
/// socket is full when it is dropped, so the close frame can only follow
/// the backlog; a tab that wakes up within this reads what was buffered,
/// then the 1013, and resumes from storage. Meanwhile it has left the
/// room and holds only its socket's buffers.
const SLOW_GOODBYE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the join snapshot, then whatever is queued and the replies,
/// until stopped.
///
/// Owns the membership, so the user leaves the hub the moment this ends,
/// whichever side ended it.
///
/// A client that stops reading is handled twice over, on purpose: if its
/// socket accepts nothing for `stall_timeout` it is dropped (it holds only
/// kernel buffers until then), and if a whole queue of events piles up
/// behind it, it is closed with 1013. Either way it can reconnect; nobody
/// else ever waits for it. Every `ping_interval` it is pinged; no pong
/// within `ping_timeout` and it is dropped as gone (a laptop lid closed, a
/// network that vanished without a FIN).
pub(super) async fn write_loop(
    peer: Arc<Peer>,
    mut membership: Membership,
    mut replies: mpsc::Receiver<Reply>,
    stop: CancellationToken,
    goodbye: CancellationToken,
    settings: SocketSettings,
) -> Disconnect {
    // The snapshot can be large (a resume sends up to 10,000 messages): a
    // client that does not read it is as stalled as one that stops later.
    peer.start(
        std::mem::take(&mut membership.snapshot),
        membership.seen_through,
        membership.name(),
        membership.room().name(),
    );
    if let Err(why) = flush(&peer, settings.stall_timeout).await {
        return fall_behind(&peer, membership, replies, why).await;
    }
    // One timer for the connection's life, moved rather than re-created:
    // next ping when no pong is awaited, the pong deadline when one is.
    let keepalive = tokio::time::sleep(settings.ping_interval);
    tokio::pin!(keepalive);
    let mut awaiting_pong = false;
    // Made once: asking a cancellation token afresh on every turn takes
    // its tree's lock.
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            biased;
            () = &mut stopped => {
                if goodbye.is_cancelled() {
                    return say_goodbye(&peer, settings.stall_timeout).await;
                }
                // The reader has stopped: the connection was lost.
                return Disconnect::ConnectionLost("reader stopped".to_string());
            }
            Some(reply) = replies.recv() => match reply {
                Reply::Frame(frame) => peer.reply(frame),
                Reply::Close { code, reason } => {
                    peer.close(encode::close(code, reason));
                    let _ = flush(&peer, GOODBYE_TIMEOUT).await;
                    return Disconnect::BadInput { code, reason };
                }
                // The close the client sent is answered here, with its own
                // code: without an answer the client sees 1006 instead of
                // its own clean close.
                Reply::AnswerClose(code) => {
                    peer.close(match code {
                        Some(code) => encode::close(code, ""),
                        None => encode::frame(encode::CLOSE, &[]),
                    });
                    let _ = flush(&peer, GOODBYE_TIMEOUT).await;
                    return Disconnect::ClientClosed(code);
                }
                Reply::AnswerPing(payload) => peer.control(encode::frame(encode::PONG, &payload)),
                Reply::Pong => {
                    awaiting_pong = false;
                    let next = tokio::time::Instant::now() + settings.ping_interval;
                    keepalive.as_mut().reset(next);
                    continue;
                }
            },
            () = peer.woken() => {}
            () = &mut keepalive => {
                if awaiting_pong {
                    return Disconnect::Unresponsive { after: settings.ping_timeout };
                }
                awaiting_pong = true;
                keepalive.as_mut().reset(tokio::time::Instant::now() + settings.ping_timeout);
                peer.control(encode::frame(encode::PING, &[]));
            }
        }
        let missed = peer.missed();
        if missed > 0 {
            return fall_behind(&peer, membership, replies, Disconnect::TooSlow { missed }).await;
        }
        if let Err(why) = flush(&peer, settings.stall_timeout).await {
            return fall_behind(&peer, membership, replies, why).await;
        }
    }
}

/// Writes out everything queued, waiting while the socket is full, as long
/// as each wait is shorter than `stall_timeout`. `Err`: why it must end.
async fn flush(peer: &Peer, stall_timeout: Duration) -> Result<(), Disconnect> {
    loop {
        match peer.drain() {
            Ok(Drained::All) => return Ok(()),
            // A send is on the room's ring for a moment; its result wakes
            // this writer if anything is queued behind it.
            Ok(Drained::Ring) => {
                if tokio::time::timeout(stall_timeout, peer.woken())
                    .await
                    .is_err()
                {
                    return Err(Disconnect::Stalled {
                        after: stall_timeout,
                    });
                }
            }
            Ok(Drained::Blocked) => {
                match tokio::time::timeout(stall_timeout, peer.socket().writable()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => return Err(Disconnect::ConnectionLost(err.to_string())),
                    Err(_) => {
                        return Err(Disconnect::Stalled {
                            after: stall_timeout,
                        });
                    }
                }
            }
            Err(err) => return Err(Disconnect::ConnectionLost(err.to_string())),
        }
    }
}

/// The server is going: everything already queued for this client goes
/// out, then 1001. Bounded by the server's shutdown deadline: at it the
/// process exits, writer or not, if a client does not read.
async fn say_goodbye(peer: &Peer, stall_timeout: Duration) -> Disconnect {
    peer.close(encode::close(
        close_code::GOING_AWAY,
        "Server is shutting down",
    ));
    let _ = flush(peer, stall_timeout).await;
    Disconnect::ServerShutdown
}

/// Ends a connection whose write failed (`why`). A lost one just ends. One
/// that fell behind — a whole queue piled up (it missed events it can
/// never get back from there), or its socket took nothing for the stall
/// timeout — leaves the room at once; the 1013 then waits behind its
/// backlog, so it reconnects and resumes rather than showing a gapped chat.
async fn fall_behind(
    peer: &Peer,
    membership: Membership,
    replies: mpsc::Receiver<Reply>,
    why: Disconnect,
) -> Disconnect {
    if !matches!(why, Disconnect::TooSlow { .. } | Disconnect::Stalled { .. }) {
        return why;
    }
    // Out of the room, and the reader stops too (it watches the reply
    // queue): the name is free for someone else at once, so nothing more
    // may be said under it from this socket.
    drop(membership);
    drop(replies);
    let reason = "Too slow: fell behind the chat; reconnect to continue";
    peer.close(encode::close(close_code::TRY_AGAIN_LATER, reason));
    let _ = tokio::time::timeout(SLOW_GOODBYE_TIMEOUT, flush(peer, SLOW_GOODBYE_TIMEOUT)).await;
    why
}

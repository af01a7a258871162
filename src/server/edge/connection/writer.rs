//! The writer task: the join snapshot, then the room's ring and this
//! client's replies, out to the socket; pings; the goodbyes.

use std::time::Duration;

use tokio::{
    io::AsyncWrite,
    sync::{broadcast::error::RecvError, broadcast::error::TryRecvError, mpsc},
};
use tokio_util::sync::CancellationToken;

use super::{Disconnect, dialect::Speech};
use crate::{
    protocol::close_code,
    server::{
        chat::frame::{Frame, Outbound, Reply},
        config::SocketSettings,
        edge::wire::{self, encode},
        hub::Membership,
        metrics,
    },
};

/// The socket's write side, as the writer sees it.
type Sink<W> = wire::Outbound<W>;

/// Most frames written before one flush: enough to amortise the syscall in
/// a burst, few enough that the first of them is not held back long.
const WRITE_BATCH: usize = 64;
/// How long a close frame to a client that reads slowly may take to go out
/// before the connection is simply dropped.
const GOODBYE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the 1013 for a client that fell behind may wait to go out. Its
/// socket is full when it is dropped, so the close frame can only follow
/// the backlog; a tab that wakes up within this reads what was buffered,
/// then the 1013, and resumes from storage. Meanwhile it has left the
/// room and holds only its socket's buffers.
const SLOW_GOODBYE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the join snapshot, then hub events and replies, until stopped.
///
/// Owns the membership, so the user leaves the hub the moment this ends,
/// whichever side ended it.
///
/// A client that stops reading is handled twice over, on purpose: if its
/// socket accepts nothing for `stall_timeout` it is dropped (it holds only
/// kernel buffers until then), and if it resumes after the ring has lapped
/// it, it is closed with 1013. Either way it can reconnect; nobody else
/// ever waits for it. Every `ping_interval` it is pinged; no pong within
/// `ping_timeout` and it is dropped as gone (a laptop lid closed, a network
/// that vanished without a FIN).
pub(super) async fn write_loop<W>(
    mut sink: Sink<W>,
    mut membership: Membership,
    mut replies: mpsc::Receiver<Reply>,
    stop: CancellationToken,
    goodbye: CancellationToken,
    settings: SocketSettings,
    mut speech: Speech,
) -> Disconnect
where
    W: AsyncWrite + Unpin,
{
    // The snapshot can be large (a resume sends up to 10,000 messages): a
    // client that does not read it is as stalled as one that stops later.
    let snapshot = speech.snapshot(
        std::mem::take(&mut membership.snapshot),
        membership.name(),
        membership.room().name(),
    );
    let frames = snapshot.len() as u64;
    let written = timed_write(settings.stall_timeout, async {
        for frame in snapshot {
            sink.feed_text(frame.as_bytes()).await?;
        }
        sink.flush().await?;
        metrics::delivered(frames);
        Ok(None)
    })
    .await;
    if let Err(why) = written {
        return fall_behind(&mut sink, membership, replies, why).await;
    }
    // One timer for the connection's life, moved rather than re-created:
    // next ping when no pong is awaited, the pong deadline when one is.
    let keepalive = tokio::time::sleep(settings.ping_interval);
    tokio::pin!(keepalive);
    // Made once: asking a cancellation token afresh on every turn takes
    // its tree's lock (5% of the server's time at 1,000 listeners, `perf`).
    let stopped = stop.cancelled();
    tokio::pin!(stopped);
    let mut awaiting_pong = false;
    loop {
        let first = tokio::select! {
            biased;
            () = &mut stopped => {
                if goodbye.is_cancelled() {
                    return say_goodbye(&mut sink, &mut membership, &mut speech).await;
                }
                // The reader has stopped: the connection was lost.
                return Disconnect::ConnectionLost("reader stopped".to_string());
            }
            Some(reply) = replies.recv() => match reply {
                Reply::Frame(frame) => match speech.say(frame) {
                    Some(frame) => frame,
                    None => continue,
                },
                Reply::Close { code, reason } => {
                    let close = sink.send_raw(encode::close(code, reason));
                    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, close).await;
                    return Disconnect::BadInput { code, reason };
                }
                // The close the client sent is answered here, where the
                // socket is written, with its own code: without an answer
                // the client sees 1006 instead of its own clean close.
                Reply::AnswerClose(code) => {
                    let answer = match code {
                        Some(code) => encode::close(code, ""),
                        None => encode::frame(encode::CLOSE, &[]),
                    };
                    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
                        sink.send_raw(answer).await?;
                        sink.shutdown().await
                    })
                    .await;
                    return Disconnect::ClientClosed(code);
                }
                Reply::AnswerPing(payload) => {
                    let pong = sink.send_raw(encode::frame(encode::PONG, &payload));
                    match tokio::time::timeout(settings.stall_timeout, pong).await {
                        Ok(Ok(())) => continue,
                        Ok(Err(err)) => return Disconnect::ConnectionLost(err.to_string()),
                        Err(_) => return Disconnect::Stalled { after: settings.stall_timeout },
                    }
                }
                Reply::Pong => {
                    awaiting_pong = false;
                    let next = tokio::time::Instant::now() + settings.ping_interval;
                    keepalive.as_mut().reset(next);
                    continue;
                }
            },
            event = membership.events.recv() => match event {
                Ok(event) => match wanted(&membership, &mut speech, event) {
                    Some(frame) => frame,
                    None => continue,
                },
                Err(RecvError::Lagged(missed)) => {
                    return fall_behind(&mut sink, membership, replies, Disconnect::TooSlow { missed }).await;
                }
                Err(RecvError::Closed) => return Disconnect::ServerShutdown,
            },
            () = &mut keepalive => {
                if awaiting_pong {
                    return Disconnect::Unresponsive { after: settings.ping_timeout };
                }
                awaiting_pong = true;
                keepalive.as_mut().reset(tokio::time::Instant::now() + settings.ping_timeout);
                let ping = sink.send_raw(encode::frame(encode::PING, &[]));
                match tokio::time::timeout(settings.stall_timeout, ping).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(err)) => return Disconnect::ConnectionLost(err.to_string()),
                    Err(_) => return Disconnect::Stalled { after: settings.stall_timeout },
                }
            }
        };
        let batch = write_batch(&mut sink, first, &mut membership, &mut speech);
        if let Err(why) = timed_write(settings.stall_timeout, batch).await {
            return fall_behind(&mut sink, membership, replies, why).await;
        }
    }
}

/// A write under the stall timeout; `Ok(Some(missed))` from the write
/// means the ring lapped the client meanwhile. `Err`: why it must end.
///
/// Nearly every write completes at once (the socket has room), so it is
/// tried first and the timer is armed only if it has to wait: a timer per
/// batch was 2.5% of the server's time at 1,000 listeners (`perf`).
async fn timed_write(
    stall_timeout: Duration,
    write: impl Future<Output = std::io::Result<Option<u64>>>,
) -> Result<(), Disconnect> {
    tokio::pin!(write);
    let done = match futures::poll!(&mut write) {
        std::task::Poll::Ready(done) => Ok(done),
        std::task::Poll::Pending => tokio::time::timeout(stall_timeout, write).await,
    };
    match done {
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(missed))) => Err(Disconnect::TooSlow { missed }),
        Ok(Err(err)) => Err(Disconnect::ConnectionLost(err.to_string())),
        Err(_) => Err(Disconnect::Stalled {
            after: stall_timeout,
        }),
    }
}

/// The server is going: everything already in the ring for this client
/// goes out, then 1001. Bounded by the server's shutdown deadline: at it
/// the process exits, writer or not, if a client does not read.
async fn say_goodbye<W>(
    sink: &mut Sink<W>,
    membership: &mut Membership,
    speech: &mut Speech,
) -> Disconnect
where
    W: AsyncWrite + Unpin,
{
    loop {
        match membership.events.try_recv() {
            Ok(event) => {
                if let Some(frame) = wanted(membership, speech, event)
                    && sink.feed_text(frame.as_bytes()).await.is_err()
                {
                    return Disconnect::ServerShutdown;
                }
            }
            // Too far behind to catch up here; it resumes from storage.
            Err(TryRecvError::Lagged(_)) => break,
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        }
    }
    let _ = sink
        .send_raw(encode::close(
            close_code::GOING_AWAY,
            "Server is shutting down",
        ))
        .await;
    Disconnect::ServerShutdown
}

/// Writes `first` and whatever else is already waiting (up to
/// [`WRITE_BATCH`] frames), then flushes once. `Ok(Some(missed))` if the
/// ring lapped this client meanwhile.
async fn write_batch<W>(
    sink: &mut Sink<W>,
    first: Frame,
    membership: &mut Membership,
    speech: &mut Speech,
) -> std::io::Result<Option<u64>>
where
    W: AsyncWrite + Unpin,
{
    sink.feed_text(first.as_bytes()).await?;
    let mut frames = 1;
    for _ in 1..WRITE_BATCH {
        let frame = match membership.events.try_recv() {
            Ok(event) => match wanted(membership, speech, event) {
                Some(frame) => frame,
                None => continue,
            },
            Err(TryRecvError::Lagged(missed)) => return Ok(Some(missed)),
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        };
        sink.feed_text(frame.as_bytes()).await?;
        frames += 1;
    }
    sink.flush().await?;
    metrics::delivered(frames);
    Ok(None)
}

/// The frame to send for a ring event, if this client is to get one: meant
/// for it, and said in its dialect.
fn wanted(membership: &Membership, speech: &mut Speech, event: Outbound) -> Option<Frame> {
    membership.wanted(event).and_then(|frame| speech.say(frame))
}

/// Ends a connection whose write failed (`why`). A lost one just ends. One
/// that fell behind — the ring lapped it (it missed events it can never get
/// back from there), or its socket took nothing for the stall timeout —
/// leaves the room at once; the 1013 then waits behind its backlog, so it
/// reconnects and resumes rather than showing a gapped chat.
async fn fall_behind<W>(
    sink: &mut Sink<W>,
    membership: Membership,
    replies: mpsc::Receiver<Reply>,
    why: Disconnect,
) -> Disconnect
where
    W: AsyncWrite + Unpin,
{
    if !matches!(why, Disconnect::TooSlow { .. } | Disconnect::Stalled { .. }) {
        return why;
    }
    // Out of the room, and the reader stops too (it watches the reply
    // queue): the name is free for someone else at once, so nothing more
    // may be said under it from this socket.
    drop(membership);
    drop(replies);
    let reason = "Too slow: fell behind the chat; reconnect to continue";
    let goodbye = sink.send_raw(encode::close(close_code::TRY_AGAIN_LATER, reason));
    let _ = tokio::time::timeout(SLOW_GOODBYE_TIMEOUT, goodbye).await;
    why
}

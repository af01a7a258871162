//! One WebSocket connection, from join to goodbye.
//!
//! The socket is split in two tasks, as in axum's chat example: the reader
//! (this task) parses client events and publishes them; the writer drains the
//! hub's ring into the socket. They meet only through the hub and a small
//! channel for replies meant for this client alone (error events), so a slow
//! peer stalls nothing but its own writer.
//!
//! # Shutdown
//!
//! Two signals, in order. `shutdown`: the reader stops taking frames (what
//! it was publishing is finished first). `goodbye`, fired once everything
//! accepted is stored and in the rooms' rings: the writer sends what is
//! left in its ring, then closes with 1001. So a message someone was shown
//! as sent reaches everyone still connected before they are told to go.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{broadcast::error::RecvError, broadcast::error::TryRecvError, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::{
    admission::Ticket,
    config::SocketSettings,
    flood::{FloodGate, Verdict},
    hub::{Frame, Hub, JoinRequest, Membership, Reply, encode},
    room::Room,
};
use crate::protocol::{ClientEvent, ServerEvent, close_code};

/// Error replies queued for one client. Small on purpose: a client that
/// floods bad input without reading the answers only slows its own reader.
const REPLY_QUEUE: usize = 16;
/// Most frames written before one flush: enough to amortise the syscall in
/// a burst, few enough that the first of them is not held back long.
const WRITE_BATCH: usize = 64;
/// Longest close reason a close frame can carry (125 bytes minus the code).
const MAX_CLOSE_REASON: usize = 123;
/// How long a close frame to a client that reads slowly may take to go out
/// before the connection is simply dropped.
const GOODBYE_TIMEOUT: Duration = Duration::from_millis(200);
/// How long the 1013 for a client that fell behind may wait to go out. Its
/// socket is full when it is dropped, so the close frame can only follow
/// the backlog; a tab that wakes up within this reads what was buffered,
/// then the 1013, and resumes from storage. Meanwhile it has left the
/// room and holds only its socket's buffers.
const SLOW_GOODBYE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the writer gets to say goodbye once the reader has finished.
const WRITER_GRACE: Duration = Duration::from_secs(1);
/// A client's `typing` events are passed on at most this often; Banter's
/// client sends one every 2 s while typing, so this only stops floods.
const TYPING_EVERY: Duration = Duration::from_secs(1);

/// Why a connection ended; logged once per connection.
#[derive(Debug)]
enum Disconnect {
    ClientClosed(Option<u16>),
    BadInput { code: u16, reason: &'static str },
    ConnectionLost(String),
    TooSlow { missed: u64 },
    Stalled { after: Duration },
    Unresponsive { after: Duration },
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
pub struct Signals {
    /// Stop reading: the server is going away.
    pub shutdown: CancellationToken,
    /// Everything accepted is in the rings: send it, then close with 1001.
    pub goodbye: CancellationToken,
}

/// Runs a freshly upgraded socket until either side ends it. `_ticket`
/// holds the socket's place in the connection limits until then.
pub async fn run(
    socket: WebSocket,
    request: JoinRequest,
    hub: Arc<Hub>,
    signals: Signals,
    settings: SocketSettings,
    _ticket: Ticket,
) {
    let (mut sink, stream) = socket.split();
    let style = request.style;
    let username = request.username.clone();
    let membership = match hub.join(request).await {
        Ok(membership) => membership,
        Err(err) => {
            info!(user = %username, reason = %err, "join refused");
            let _ = sink.send(close(err.close_code(), &err.to_string())).await;
            return;
        }
    };
    let name = Arc::clone(membership.name());
    let room = Arc::clone(membership.room());
    info!(user = %name, room = %room.name(), presence = ?style, online = hub.len(), "connected");

    let (replies, reply_queue) = mpsc::channel(REPLY_QUEUE);
    let stop_writer = signals.goodbye.child_token();
    let mut writer = tokio::spawn(write_loop(
        sink,
        membership,
        reply_queue,
        stop_writer.clone(),
        signals.goodbye,
        settings,
    ));
    let reader = read_loop(
        stream,
        &name,
        &room,
        &hub,
        replies,
        &settings,
        &signals.shutdown,
    );
    let reason = tokio::select! {
        reason = reader => {
            match reason {
                // The writer has a close frame queued and ends once it is sent.
                Disconnect::BadInput { .. } => {}
                // The writer waits for `goodbye` (the server's own deadline
                // bounds that wait).
                Disconnect::ServerShutdown => {
                    let written = (&mut writer).await;
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

/// The writer owned the membership; it is dropped (the user has left) by
/// the time the writer task has finished or been aborted.
fn log_end(name: &str, room: &Room, hub: &Hub, reason: Disconnect) {
    info!(user = %name, room = %room.name(), %reason, online = hub.len(), "disconnected");
}

/// Reads client events until the client closes or the connection fails.
async fn read_loop<S>(
    mut stream: S,
    name: &Arc<str>,
    room: &Arc<Room>,
    hub: &Hub,
    replies: mpsc::Sender<Reply>,
    settings: &SocketSettings,
    shutdown: &CancellationToken,
) -> Disconnect
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut last_typing: Option<Instant> = None;
    let mut flood = FloodGate::new(settings);

    loop {
        // Only waiting for a frame is cancelled; a frame being handled
        // (a message on its way to storage) is finished first.
        let message = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Disconnect::ServerShutdown,
            message = stream.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        if matches!(message, Ok(Message::Text(_) | Message::Binary(_))) {
            match flood.check() {
                Verdict::Accept => {}
                Verdict::SlowDown => {
                    let slow_down = encode_error(format!(
                        "Slow down: at most {} messages a second",
                        settings.message_rate
                    ));
                    if replies.send(Reply::Frame(slow_down)).await.is_err() {
                        break;
                    }
                    continue;
                }
                Verdict::Close => {
                    let (code, reason) = (close_code::POLICY, "Sending too fast: slow down");
                    debug!(user = %name, "closing a flooding client");
                    let _ = replies.send(Reply::Close { code, reason }).await;
                    return Disconnect::BadInput { code, reason };
                }
            }
        }
        let reply = match message {
            Ok(Message::Text(text)) => match serde_json::from_str::<ClientEvent>(&text) {
                Ok(ClientEvent::SendMessage { message, client_id }) => {
                    match hub.publish(room, name, message, client_id, &replies).await {
                        Ok(()) => None,
                        Err(err) => Some(encode_error(err.to_string())),
                    }
                }
                Ok(ClientEvent::LoadHistory { before }) => {
                    match hub.load_history(room, before).await {
                        Ok(page) => Some(page),
                        Err(err) => {
                            tracing::error!(%err, room = %room.name(), "cannot load history");
                            Some(encode_error(
                                "Older messages could not be loaded; try again".to_string(),
                            ))
                        }
                    }
                }
                Ok(ClientEvent::Typing) => {
                    if last_typing.is_none_or(|at| at.elapsed() >= TYPING_EVERY) {
                        last_typing = Some(Instant::now());
                        room.typing(name);
                    }
                    None
                }
                Err(err) => Some(encode_error(format!("Could not use that event: {err}"))),
            },
            Ok(Message::Binary(_)) => Some(encode_error(
                "Binary frames are not supported; send JSON text frames".to_string(),
            )),
            Ok(Message::Close(frame)) => {
                return Disconnect::ClientClosed(frame.map(|f| f.code));
            }
            // tungstenite answers pings itself.
            Ok(Message::Ping(_)) => None,
            // The writer is waiting for this; if its queue is full the
            // client is flooding and the ping timeout may take it.
            Ok(Message::Pong(_)) => {
                let _ = replies.try_send(Reply::Pong);
                None
            }
            Err(err) => {
                let Some((code, reason)) = bad_input(&err) else {
                    return Disconnect::ConnectionLost(err.to_string());
                };
                debug!(user = %name, %err, code, "closing on bad input");
                let _ = replies.send(Reply::Close { code, reason }).await;
                return Disconnect::BadInput { code, reason };
            }
        };
        if let Some(frame) = reply {
            // Waiting here only holds up this client's own reader.
            if replies.send(Reply::Frame(frame)).await.is_err() {
                break;
            }
        }
    }
    Disconnect::ConnectionLost("stream ended".to_string())
}

/// The close code and reason for input that ends a connection, or `None`
/// for a plain network failure.
fn bad_input(err: &axum::Error) -> Option<(u16, &'static str)> {
    let source = std::error::Error::source(err)?;
    match source.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => {
            Some((close_code::TOO_BIG, "Message too big: the limit is 64 KiB"))
        }
        tungstenite::Error::Utf8(_) => {
            Some((close_code::INVALID_DATA, "Text frames must be valid UTF-8"))
        }
        _ => None,
    }
}

/// An `error` event for this client alone.
fn encode_error(message: String) -> Frame {
    debug!(%message, "refused a client event");
    encode(&ServerEvent::Error { message })
}

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
async fn write_loop<S>(
    mut sink: S,
    mut membership: Membership,
    mut replies: mpsc::Receiver<Reply>,
    stop: CancellationToken,
    goodbye: CancellationToken,
    settings: SocketSettings,
) -> Disconnect
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    for frame in std::mem::take(&mut membership.snapshot) {
        if let Err(err) = sink.feed(Message::Text(frame)).await {
            return Disconnect::ConnectionLost(err.to_string());
        }
    }
    if let Err(err) = sink.flush().await {
        return Disconnect::ConnectionLost(err.to_string());
    }
    // One timer for the connection's life, moved rather than re-created:
    // next ping when no pong is awaited, the pong deadline when one is.
    let keepalive = tokio::time::sleep(settings.ping_interval);
    tokio::pin!(keepalive);
    let mut awaiting_pong = false;
    loop {
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => {
                if goodbye.is_cancelled() {
                    return say_goodbye(&mut sink, &mut membership).await;
                }
                return Disconnect::ClientClosed(None);
            }
            Some(reply) = replies.recv() => match reply {
                Reply::Frame(frame) => frame,
                Reply::Close { code, reason } => {
                    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, sink.send(close(code, reason))).await;
                    return Disconnect::BadInput { code, reason };
                }
                Reply::Pong => {
                    awaiting_pong = false;
                    let next = tokio::time::Instant::now() + settings.ping_interval;
                    keepalive.as_mut().reset(next);
                    continue;
                }
            },
            event = membership.events.recv() => match event {
                Ok(event) => match membership.wanted(event) {
                    Some(frame) => frame,
                    None => continue,
                },
                Err(RecvError::Lagged(missed)) => {
                    return too_slow(&mut sink, membership, Disconnect::TooSlow { missed }).await;
                }
                Err(RecvError::Closed) => return Disconnect::ServerShutdown,
            },
            () = &mut keepalive => {
                if awaiting_pong {
                    return Disconnect::Unresponsive { after: settings.ping_timeout };
                }
                awaiting_pong = true;
                keepalive.as_mut().reset(tokio::time::Instant::now() + settings.ping_timeout);
                let ping = sink.send(Message::Ping(Default::default()));
                match tokio::time::timeout(settings.stall_timeout, ping).await {
                    Ok(Ok(())) => continue,
                    Ok(Err(err)) => return Disconnect::ConnectionLost(err.to_string()),
                    Err(_) => return Disconnect::Stalled { after: settings.stall_timeout },
                }
            }
        };
        let batch = write_batch(&mut sink, first, &mut membership);
        match tokio::time::timeout(settings.stall_timeout, batch).await {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(missed))) => {
                return too_slow(&mut sink, membership, Disconnect::TooSlow { missed }).await;
            }
            Ok(Err(err)) => return Disconnect::ConnectionLost(err.to_string()),
            Err(_) => {
                let after = settings.stall_timeout;
                return too_slow(&mut sink, membership, Disconnect::Stalled { after }).await;
            }
        }
    }
}

/// The server is going: everything already in the ring for this client
/// goes out, then 1001. Bounded by the server's shutdown deadline, which
/// aborts a writer still stuck on a client that does not read.
async fn say_goodbye<S>(sink: &mut S, membership: &mut Membership) -> Disconnect
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    loop {
        match membership.events.try_recv() {
            Ok(event) => {
                if let Some(frame) = membership.wanted(event)
                    && sink.feed(Message::Text(frame)).await.is_err()
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
        .send(close(close_code::GOING_AWAY, "Server is shutting down"))
        .await;
    Disconnect::ServerShutdown
}

/// Writes `first` and whatever else is already waiting (up to
/// [`WRITE_BATCH`] frames), then flushes once. `Ok(Some(missed))` if the
/// ring lapped this client meanwhile.
async fn write_batch<S>(
    sink: &mut S,
    first: Frame,
    membership: &mut Membership,
) -> Result<Option<u64>, axum::Error>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    sink.feed(Message::Text(first)).await?;
    for _ in 1..WRITE_BATCH {
        let frame = match membership.events.try_recv() {
            Ok(event) => match membership.wanted(event) {
                Some(frame) => frame,
                None => continue,
            },
            Err(TryRecvError::Lagged(missed)) => return Ok(Some(missed)),
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        };
        sink.feed(Message::Text(frame)).await?;
    }
    sink.flush().await?;
    Ok(None)
}

/// The client fell behind: the ring lapped it (it missed events it can
/// never get back from there), or its socket took nothing for the stall
/// timeout. It leaves the room at once; the 1013 then waits behind its
/// backlog, so it reconnects and resumes rather than showing a gapped chat.
async fn too_slow<S>(sink: &mut S, membership: Membership, why: Disconnect) -> Disconnect
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    drop(membership);
    let reason = "Too slow: fell behind the chat; reconnect to continue";
    let goodbye = sink.send(close(close_code::TRY_AGAIN_LATER, reason));
    let _ = tokio::time::timeout(SLOW_GOODBYE_TIMEOUT, goodbye).await;
    why
}

/// A close frame. RFC 6455 allows 123 bytes of reason; a longer one (a long
/// non-ASCII name in "already taken") is cut at a character boundary.
fn close(code: u16, reason: &str) -> Message {
    let mut end = reason.len().min(MAX_CLOSE_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_the_frame() {
        let long = format!("Username {} is already taken", "é".repeat(32));
        let Message::Close(Some(frame)) = close(1008, &long) else {
            panic!("not a close frame")
        };
        assert!(frame.reason.len() <= MAX_CLOSE_REASON);
        assert!(long.starts_with(frame.reason.as_str()));
    }
}

//! One WebSocket connection, from join to goodbye.
//!
//! The socket is split in two tasks, as in axum's chat example: the reader
//! (this task) parses client events and publishes them; the writer drains the
//! hub's ring into the socket. They meet only through the hub and a small
//! channel for replies meant for this client alone (error events), so a slow
//! peer stalls nothing but its own writer.

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
    hub::{Frame, Hub, JoinRequest, Membership, Reply, encode},
    room::{Outbound, Room},
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
            Disconnect::ServerShutdown => write!(f, "server shutting down"),
        }
    }
}

/// Runs a freshly upgraded socket until either side ends it.
pub async fn run(
    socket: WebSocket,
    request: JoinRequest,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    stall_timeout: Duration,
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
    let stop_writer = shutdown.child_token();
    let mut writer = tokio::spawn(write_loop(
        sink,
        membership,
        reply_queue,
        stop_writer.clone(),
        shutdown,
        stall_timeout,
    ));
    let reason = tokio::select! {
        reason = read_loop(stream, &name, &room, &hub, replies) => {
            // After bad input the writer has a close frame queued and ends
            // once it is sent; otherwise it is told to stop.
            if !matches!(reason, Disconnect::BadInput { .. }) {
                stop_writer.cancel();
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
    // The writer owned the membership; it is dropped (the user has left)
    // by the time the writer task has finished or been aborted.
    info!(user = %name, room = %room.name(), %reason, online = hub.len(), "disconnected");
}

/// Reads client events until the client closes or the connection fails.
async fn read_loop<S>(
    mut stream: S,
    name: &Arc<str>,
    room: &Arc<Room>,
    hub: &Hub,
    replies: mpsc::Sender<Reply>,
) -> Disconnect
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let mut last_typing: Option<Instant> = None;

    while let Some(message) = stream.next().await {
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
            Ok(Message::Ping(_) | Message::Pong(_)) => None,
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
/// ever waits for it.
async fn write_loop<S>(
    mut sink: S,
    mut membership: Membership,
    mut replies: mpsc::Receiver<Reply>,
    stop: CancellationToken,
    shutdown: CancellationToken,
    stall_timeout: Duration,
) -> Disconnect
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    let style = membership.style();
    for frame in std::mem::take(&mut membership.snapshot) {
        if let Err(err) = sink.feed(Message::Text(frame)).await {
            return Disconnect::ConnectionLost(err.to_string());
        }
    }
    if let Err(err) = sink.flush().await {
        return Disconnect::ConnectionLost(err.to_string());
    }
    loop {
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => {
                if shutdown.is_cancelled() {
                    let _ = sink.send(close(close_code::GOING_AWAY, "Server is shutting down")).await;
                    return Disconnect::ServerShutdown;
                }
                return Disconnect::ClientClosed(None);
            }
            Some(reply) = replies.recv() => match reply {
                Reply::Frame(frame) => frame,
                Reply::Close { code, reason } => {
                    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, sink.send(close(code, reason))).await;
                    return Disconnect::BadInput { code, reason };
                }
            },
            event = membership.events.recv() => match event {
                Ok(Outbound { audience, id, frame })
                    if audience.includes(style) && (id == 0 || id > membership.seen_through) =>
                {
                    frame
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(missed)) => return too_slow(&mut sink, missed).await,
                Err(RecvError::Closed) => return Disconnect::ServerShutdown,
            },
        };
        let batch = write_batch(&mut sink, first, &mut membership, style);
        match tokio::time::timeout(stall_timeout, batch).await {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(missed))) => return too_slow(&mut sink, missed).await,
            Ok(Err(err)) => return Disconnect::ConnectionLost(err.to_string()),
            Err(_) => {
                let reason = "Stopped reading; reconnect to continue";
                let _ = tokio::time::timeout(
                    GOODBYE_TIMEOUT,
                    sink.send(close(close_code::TRY_AGAIN_LATER, reason)),
                )
                .await;
                return Disconnect::Stalled {
                    after: stall_timeout,
                };
            }
        }
    }
}

/// Writes `first` and whatever else is already waiting (up to
/// [`WRITE_BATCH`] frames), then flushes once. `Ok(Some(missed))` if the
/// ring lapped this client meanwhile.
async fn write_batch<S>(
    sink: &mut S,
    first: Frame,
    membership: &mut Membership,
    style: super::room::PresenceStyle,
) -> Result<Option<u64>, axum::Error>
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    sink.feed(Message::Text(first)).await?;
    for _ in 1..WRITE_BATCH {
        let frame = match membership.events.try_recv() {
            Ok(Outbound {
                audience,
                id,
                frame,
            }) if audience.includes(style) && (id == 0 || id > membership.seen_through) => frame,
            Ok(_) => continue,
            Err(TryRecvError::Lagged(missed)) => return Ok(Some(missed)),
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        };
        sink.feed(Message::Text(frame)).await?;
    }
    sink.flush().await?;
    Ok(None)
}

/// The client missed events it can never get back from the ring: say so
/// with 1013 so it reconnects, rather than letting it show a gapped chat.
async fn too_slow<S>(sink: &mut S, missed: u64) -> Disconnect
where
    S: Sink<Message, Error = axum::Error> + Unpin,
{
    let reason = "Too slow: fell behind the chat; reconnect to continue";
    let goodbye = sink.send(close(close_code::TRY_AGAIN_LATER, reason));
    let _ = tokio::time::timeout(GOODBYE_TIMEOUT, goodbye).await;
    Disconnect::TooSlow { missed }
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

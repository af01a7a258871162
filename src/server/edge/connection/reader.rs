//! The reader task: client frames in, through the flood gate, to the hub.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::{io::AsyncRead, sync::mpsc};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{Disconnect, dialect::Dialect};
use crate::{
    protocol::{ClientEvent, SLOW_DOWN, ServerEvent, close_code},
    server::{
        chat::{
            frame::{Frame, Reply, encode},
            room::Room,
        },
        config::SocketSettings,
        edge::{
            admission::Ticket,
            flood::{FloodGate, Start, Verdict},
            wire::{Inbound, Incoming, ReadError},
        },
        hub::Hub,
        metrics,
    },
};

/// A client's `typing` events are passed on at most this often; Banter's
/// client sends one every 2 s while typing, so this only stops floods.
const TYPING_EVERY: Duration = Duration::from_secs(1);

/// Whom a reader reads for: the user, their room, and how their frames
/// read.
pub(super) struct Speaker<'a> {
    pub(super) name: &'a Arc<str>,
    pub(super) room: &'a Arc<Room>,
    pub(super) dialect: Dialect,
}

/// Reads client events until the client closes or the connection fails.
pub(super) async fn read_loop<R>(
    stream: &mut Inbound<R>,
    speaker: Speaker<'_>,
    hub: &Hub,
    replies: mpsc::Sender<Reply>,
    settings: &SocketSettings,
    ticket: &Ticket,
    shutdown: &CancellationToken,
) -> Disconnect
where
    R: AsyncRead + Unpin,
{
    let Speaker {
        name,
        room,
        dialect,
    } = speaker;
    let mut last_typing: Option<Instant> = None;
    let start = if ticket.after_flood() {
        Start::Lean
    } else {
        Start::Full
    };
    let mut flood = FloodGate::new(settings, start);

    loop {
        // Only waiting for a frame is cancelled; a frame being handled
        // (a message on its way to storage) is finished first.
        let message = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Disconnect::ServerShutdown,
            // The writer has ended, and the user has left the room.
            _ = replies.closed() => return Disconnect::Left,
            message = stream.next() => message,
        };
        if matches!(message, Ok(Incoming::Text(_) | Incoming::Binary)) {
            match flood.check(|| ticket.spend()) {
                Verdict::Accept => {}
                Verdict::SlowDown => {
                    metrics::refused("slow-down");
                    let slow_down = encode_error(format!(
                        "{SLOW_DOWN}: the limit is {} per second",
                        settings.message_rate
                    ));
                    if replies.send(Reply::Frame(slow_down)).await.is_err() {
                        return Disconnect::Left;
                    }
                    continue;
                }
                Verdict::Close => {
                    metrics::refused("flooding");
                    let (code, reason) = (close_code::POLICY, "Sending too fast: slow down");
                    debug!(user = %name, "closing a flooding client");
                    // The cool-down starts before the close is sent: a
                    // client that reconnects the moment it reads the 1008
                    // must find it already running, not win a fresh burst
                    // while this task waits for a core.
                    ticket.flooded();
                    let _ = replies.send(Reply::Close { code, reason }).await;
                    return Disconnect::Flooding;
                }
            }
        }
        let reply = match message {
            Ok(Incoming::Text(text)) => match dialect.read(&text) {
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
                        hub.typing(room, name).await;
                    }
                    None
                }
                Err(reason) => Some(encode_error(reason)),
            },
            Ok(Incoming::Binary) => Some(encode_error(dialect.binary_refused().to_string())),
            Ok(Incoming::Close(code, _)) => {
                // The writer answers it, then ends.
                let _ = replies.send(Reply::AnswerClose(code)).await;
                return Disconnect::ClientClosed(code);
            }
            // A client that pings faster than its pongs go out is
            // flooding; the pongs it misses are its own loss.
            Ok(Incoming::Ping(payload)) => {
                let _ = replies.try_send(Reply::AnswerPing(payload));
                None
            }
            // The writer is waiting for this; if its queue is full the
            // client is flooding and the ping timeout may take it.
            Ok(Incoming::Pong) => {
                let _ = replies.try_send(Reply::Pong);
                None
            }
            Err(ReadError::Broken(broken)) => {
                let (code, reason) = (broken.code, broken.reason);
                debug!(user = %name, code, reason, "closing on bad input");
                metrics::refused(match code {
                    close_code::TOO_BIG => "too-big",
                    close_code::INVALID_DATA => "not-utf8",
                    _ => "protocol-error",
                });
                let _ = replies.send(Reply::Close { code, reason }).await;
                return Disconnect::BadInput { code, reason };
            }
            Err(err) => return Disconnect::ConnectionLost(err.to_string()),
        };
        if let Some(frame) = reply {
            // Waiting here only holds up this client's own reader.
            if replies.send(Reply::Frame(frame)).await.is_err() {
                return Disconnect::Left;
            }
        }
    }
}

/// An `error` event for this client alone.
fn encode_error(message: String) -> Frame {
    debug!(%message, "refused a client event");
    encode(&ServerEvent::Error { message })
}

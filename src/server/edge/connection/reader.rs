//! The reader task: client frames in, through the flood gate, to the hub.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::extract::ws::Message;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
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
pub(super) async fn read_loop<S>(
    stream: &mut S,
    speaker: Speaker<'_>,
    hub: &Hub,
    replies: mpsc::Sender<Reply>,
    settings: &SocketSettings,
    ticket: &Ticket,
    shutdown: &CancellationToken,
) -> Disconnect
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
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
            message = stream.next() => match message {
                Some(message) => message,
                None => break,
            },
        };
        if matches!(message, Ok(Message::Text(_) | Message::Binary(_))) {
            match flood.check(|| ticket.spend()) {
                Verdict::Accept => {}
                Verdict::SlowDown => {
                    metrics::refused("slow-down");
                    let slow_down = encode_error(format!(
                        "{SLOW_DOWN}: the limit is {} per second",
                        settings.message_rate
                    ));
                    if replies.send(Reply::Frame(slow_down)).await.is_err() {
                        break;
                    }
                    continue;
                }
                Verdict::Close => {
                    metrics::refused("flooding");
                    let (code, reason) = (close_code::POLICY, "Sending too fast: slow down");
                    debug!(user = %name, "closing a flooding client");
                    let _ = replies.send(Reply::Close { code, reason }).await;
                    return Disconnect::Flooding;
                }
            }
        }
        let reply = match message {
            Ok(Message::Text(text)) => match dialect.read(&text) {
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
            Ok(Message::Binary(_)) => Some(encode_error(dialect.binary_refused().to_string())),
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
                metrics::refused(match code {
                    close_code::TOO_BIG => "too-big",
                    close_code::INVALID_DATA => "not-utf8",
                    _ => "protocol-error",
                });
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
///
/// RFC 6455 asks a server to _Fail the WebSocket Connection_ on a frame it
/// cannot accept, and §7.4.1 names the code: 1002 for a frame that breaks
/// the framing rules, 1007 for text that is not UTF-8, 1009 for a message
/// over the limit (whole or in fragments). A close frame with a code no
/// endpoint may send (999, 1005, …) is answered with 1002 by tungstenite
/// itself, as the reply to that close; a close frame that cannot be read at
/// all (one byte of payload) arrives here as an error.
fn bad_input(err: &axum::Error) -> Option<(u16, &'static str)> {
    use tungstenite::error::ProtocolError as Broken;
    let source = std::error::Error::source(err)?;
    let protocol = |reason| Some((close_code::PROTOCOL_ERROR, reason));
    match source.downcast_ref::<tungstenite::Error>()? {
        tungstenite::Error::Capacity(_) => {
            Some((close_code::TOO_BIG, "Message too big: the limit is 64 KiB"))
        }
        tungstenite::Error::Utf8(_) => {
            Some((close_code::INVALID_DATA, "Text frames must be valid UTF-8"))
        }
        tungstenite::Error::Protocol(broken) => match broken {
            Broken::NonZeroReservedBits => protocol("Reserved bits set without an extension"),
            Broken::UnmaskedFrameFromClient => protocol("Client frames must be masked"),
            Broken::FragmentedControlFrame => protocol("Control frames must not be fragmented"),
            Broken::ControlFrameTooBig => protocol("Control frames carry at most 125 bytes"),
            Broken::UnknownControlFrameType(_)
            | Broken::UnknownDataFrameType(_)
            | Broken::InvalidOpcode(_) => protocol("Reserved opcode"),
            Broken::UnexpectedContinueFrame => protocol("Continuation with nothing to continue"),
            Broken::ExpectedFragment(_) => protocol("Expected a continuation frame"),
            Broken::InvalidCloseSequence => protocol("Malformed close frame"),
            // The peer went without a close frame, or sent after its own:
            // nobody is left to read a close of ours.
            _ => None,
        },
        _ => None,
    }
}

/// An `error` event for this client alone.
fn encode_error(message: String) -> Frame {
    debug!(%message, "refused a client event");
    encode(&ServerEvent::Error { message })
}

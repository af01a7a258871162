//! The browser's WebSocket to the server, through gloo-net.
//!
//! One task reads frames into [`ChatState`]; one forwards what the page
//! sends. The raw `web_sys::WebSocket` is kept as well, because gloo's
//! stream and sink halves cannot close the socket on their own.

use std::{cell::Cell, rc::Rc};

use futures::{SinkExt, StreamExt, channel::mpsc};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};
use leptos::{prelude::*, task::spawn_local};

use super::state::{ChatState, Status};
use crate::protocol::{
    ClientEvent, PRESENCE_DELTA, PRESENCE_PARAM, ROOM_PARAM, SINCE_PARAM, ServerEvent,
    USERNAME_PARAM, WS_PATH,
};

/// Close code for a normal, user-initiated close.
const NORMAL_CLOSURE: u16 = 1000;
/// What the browser reports when a socket drops without a close frame.
const ABNORMAL_CLOSURE: u16 = 1006;

/// An open (or opening) connection. Dropping it does not close it; call
/// [`Connection::close`].
pub struct Connection {
    raw: web_sys::WebSocket,
    outgoing: mpsc::UnboundedSender<String>,
    closed_by_us: Rc<Cell<bool>>,
}

impl Connection {
    /// Connects as `username` to `room`, feeding everything received into
    /// `state`. With `since`, the server sends the messages after that id
    /// instead of the latest page.
    pub fn open(
        username: &str,
        room: &str,
        since: Option<u64>,
        state: ChatState,
    ) -> Result<Self, String> {
        let url = socket_url(username, room, since)?;
        let raw = web_sys::WebSocket::new(&url).map_err(|_| format!("cannot open {url}"))?;
        let socket = WebSocket::try_from(raw.clone()).map_err(|err| err.to_string())?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded::<String>();
        let closed_by_us = Rc::new(Cell::new(false));
        state.status.set(Status::Connecting);

        spawn_local(async move {
            while let Some(text) = queue.next().await {
                if sink.send(Message::Text(text)).await.is_err() {
                    break;
                }
            }
        });

        let quiet = Rc::clone(&closed_by_us);
        spawn_local(async move {
            let mut closed = Status::Closed {
                code: ABNORMAL_CLOSURE,
                reason: String::new(),
            };
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(Message::Text(text)) => match ServerEvent::from_json(&text) {
                        Ok(event) => {
                            if state.status.try_get_untracked() != Some(Status::Connected) {
                                state.status.try_set(Status::Connected);
                            }
                            state.apply(event, js_sys::Date::now());
                        }
                        // A newer server may send events this page does not
                        // know yet; skipping them keeps the chat working. The
                        // error is not formatted: serde's messages would bring
                        // float printing into the WASM (~6 KB of brotli).
                        Err(_) => leptos::logging::warn!("ignored a server frame: {text}"),
                    },
                    Ok(Message::Bytes(_)) => {}
                    Err(WebSocketError::ConnectionClose(event)) => {
                        closed = Status::Closed {
                            code: event.code,
                            reason: event.reason,
                        };
                        break;
                    }
                    Err(_) => {}
                }
            }
            if !quiet.get() {
                state.status.try_set(closed);
            }
        });

        Ok(Connection {
            raw,
            outgoing,
            closed_by_us,
        })
    }

    /// Queues an event; false if the connection is gone.
    pub fn send(&self, event: &ClientEvent) -> bool {
        match serde_json::to_string(event) {
            Ok(text) => self.outgoing.unbounded_send(text).is_ok(),
            Err(_) => false,
        }
    }

    /// Closes the socket without reporting it as a disconnection.
    pub fn close(&self) {
        self.closed_by_us.set(true);
        let _ = self.raw.close_with_code(NORMAL_CLOSURE);
    }
}

/// `ws(s)://<this host>/start_web_socket?username=…&room=…&presence=delta`
/// (and `&since=…` when resuming).
fn socket_url(username: &str, room: &str, since: Option<u64>) -> Result<String, String> {
    let location = window().location();
    let scheme = match location.protocol() {
        Ok(protocol) if protocol == "https:" => "wss",
        _ => "ws",
    };
    let host = location.host().map_err(|_| "no host".to_string())?;
    let name = String::from(js_sys::encode_uri_component(username));
    let room = String::from(js_sys::encode_uri_component(room));
    let since = since.map_or(String::new(), |id| format!("&{SINCE_PARAM}={id}"));
    Ok(format!(
        "{scheme}://{host}{WS_PATH}?{USERNAME_PARAM}={name}&{ROOM_PARAM}={room}\
         &{PRESENCE_PARAM}={PRESENCE_DELTA}{since}"
    ))
}

//! The browser's WebSocket to the server, through gloo-net.
//!
//! One task reads frames and hands them to the page's supervisor; one
//! forwards what the page sends, paced. The raw `web_sys::WebSocket` is kept as well, because gloo's
//! stream and sink halves cannot close the socket on their own.
//!
//! A browser tells a page nothing about a refused handshake: the socket just
//! closes with 1006, as when the network drops. So when a socket closes
//! without ever having delivered a frame, the reader asks the server why,
//! with a plain GET of the same URL (see [`refusal`]).

use std::{cell::Cell, rc::Rc};

use futures::{SinkExt, StreamExt, channel::mpsc};
use gloo_net::websocket::{Message, WebSocketError, futures::WebSocket};
use leptos::{prelude::*, task::spawn_local};

use super::{http, session};
use crate::{
    protocol::{
        ClientEvent, ORIGIN_PARAM, PRESENCE_DELTA, PRESENCE_PARAM, ROOM_PARAM, SINCE_PARAM,
        ServerEvent, USERNAME_PARAM, WS_PATH, close_code,
    },
    supervisor::Pace,
};

/// Close code for a normal, user-initiated close.
const NORMAL_CLOSURE: u16 = 1000;
/// What the browser reports when a socket drops without a close frame.
const ABNORMAL_CLOSURE: u16 = 1006;

/// An open (or opening) connection. Dropping it does not close it; call
/// [`Connection::close`].
pub(crate) struct Connection {
    raw: web_sys::WebSocket,
    outgoing: mpsc::UnboundedSender<String>,
    closed_by_us: Rc<Cell<bool>>,
}

impl Connection {
    /// Connects as `username` to `room`. With `since`, the server sends the
    /// messages after that id instead of the latest page. Every event
    /// received goes to `on_event`; the close (code and reason; 1006 when
    /// it just dropped) to `on_close`, unless [`Connection::close`] closed
    /// it.
    pub(crate) fn open(
        username: &str,
        room: &str,
        since: Option<u64>,
        on_event: impl Fn(ServerEvent) + 'static,
        on_close: impl FnOnce(u16, String) + 'static,
    ) -> Result<Self, String> {
        let path = socket_path(username, room, since);
        let url = socket_url(&path)?;
        // Not the URL in the message: it may carry the access token, and the
        // message is shown on screen.
        let failed = || "the connection could not be opened".to_string();
        let raw = web_sys::WebSocket::new(&url).map_err(|_| failed())?;
        let socket = WebSocket::try_from(raw.clone()).map_err(|_| failed())?;
        let (mut sink, mut stream) = socket.split();
        let (outgoing, mut queue) = mpsc::unbounded::<String>();
        let closed_by_us = Rc::new(Cell::new(false));

        spawn_local(async move {
            let mut pace = Pace::new(js_sys::Date::now());
            while let Some(text) = queue.next().await {
                let wait = pace.take(js_sys::Date::now());
                if wait > 0.0 {
                    sleep_ms(wait).await;
                }
                if sink.send(Message::Text(text)).await.is_err() {
                    break;
                }
            }
        });

        let quiet = Rc::clone(&closed_by_us);
        spawn_local(async move {
            let (mut code, mut reason) = (ABNORMAL_CLOSURE, String::new());
            // The server's first frames come right after the upgrade (the
            // user list): until one arrives, the handshake may have failed.
            let mut opened = false;
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(Message::Text(text)) => match ServerEvent::from_json(&text) {
                        Ok(event) => {
                            opened = true;
                            on_event(event);
                        }
                        // A newer server may send events this page does not
                        // know yet; skipping them keeps the chat working. The
                        // error is not formatted: serde's messages would bring
                        // float printing into the WASM (~6 KB of brotli).
                        Err(_) => leptos::logging::warn!("ignored a server frame: {text}"),
                    },
                    Ok(Message::Bytes(_)) => {}
                    Err(WebSocketError::ConnectionClose(event)) => {
                        (code, reason) = (event.code, event.reason);
                        break;
                    }
                    Err(_) => {}
                }
            }
            if !opened
                && code == ABNORMAL_CLOSURE
                && !quiet.get()
                && let Some(refused) = refusal(&path).await
            {
                (code, reason) = refused;
            }
            if !quiet.get() {
                on_close(code, reason);
            }
        });

        Ok(Connection {
            raw,
            outgoing,
            closed_by_us,
        })
    }

    /// Queues an event; false if the connection is gone.
    pub(crate) fn send(&self, event: &ClientEvent) -> bool {
        match serde_json::to_string(event) {
            Ok(text) => self.outgoing.unbounded_send(text).is_ok(),
            Err(_) => false,
        }
    }

    /// Closes the socket without reporting it as a disconnection.
    pub(crate) fn close(&self) {
        self.closed_by_us.set(true);
        let _ = self.raw.close_with_code(NORMAL_CLOSURE);
    }
}

async fn sleep_ms(ms: f64) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window
                .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.ceil() as i32);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// `/start_web_socket?username=…&room=…&presence=delta` (and `&since=…`
/// when resuming, `&accessToken=…` when this tab has a token).
fn socket_path(username: &str, room: &str, since: Option<u64>) -> String {
    let name = String::from(js_sys::encode_uri_component(username));
    let room = String::from(js_sys::encode_uri_component(room));
    let since = since.map_or(String::new(), |id| format!("&{SINCE_PARAM}={id}"));
    session::with_access_token(format!(
        "{WS_PATH}?{USERNAME_PARAM}={name}&{ROOM_PARAM}={room}\
         &{PRESENCE_PARAM}={PRESENCE_DELTA}{since}"
    ))
}

/// `ws(s)://<this host><path>`.
fn socket_url(path: &str) -> Result<String, String> {
    let location = window().location();
    let scheme = match location.protocol() {
        Ok(protocol) if protocol == "https:" => "wss",
        _ => "ws",
    };
    let host = location.host().map_err(|_| "no host".to_string())?;
    Ok(format!("{scheme}://{host}{path}"))
}

/// Why the server refused the socket at `path` before upgrading it, if it
/// did. The same URL as a plain GET meets the same checks, in the same
/// order, and the first that fails answers with a sentence for people:
/// - 401 (no token) or 403 (token refused, or another site's page): the
///   same again would be refused again, so it is a refusal (the page leaves
///   the chat and shows why);
/// - 429 or 503 (limits): worth retrying later, with the reason shown;
/// - anything else (426: the server would have upgraded it; no answer: it
///   is down): `None`, the network's fault, retried as any drop.
async fn refusal(path: &str) -> Option<(u16, String)> {
    let origin = window().location().origin().unwrap_or_default();
    let origin = String::from(js_sys::encode_uri_component(&origin));
    let (status, body) = http::get(&format!("{path}&{ORIGIN_PARAM}={origin}")).await?;
    // Banter's answers are one short line; a proxy's error page is not.
    let mut reason: String = body
        .trim()
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    let code = match status {
        401 => {
            reason.push_str(TOKEN_HINT);
            close_code::POLICY
        }
        403 => close_code::POLICY,
        429 | 503 => ABNORMAL_CLOSURE,
        _ => return None,
    };
    Some((code, reason))
}

/// Said with a 401: what a person without a token can do about it. (A
/// word joiner after the `?`, or narrow screens break the line there.)
const TOKEN_HINT: &str =
    " (open Banter with the link you were given: the one that ends in ?\u{2060}accessToken=…)";

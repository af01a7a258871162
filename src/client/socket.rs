//! The browser's WebSocket to the server, through gloo-net.
//!
//! One task reads frames into [`ChatState`]; one forwards what the page
//! sends. The raw `web_sys::WebSocket` is kept as well, because gloo's
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

use super::{
    http, session,
    state::{ChatState, Status},
};
use crate::protocol::{
    ClientEvent, DEFAULT_MESSAGE_BURST, DEFAULT_MESSAGE_RATE, ORIGIN_PARAM, PRESENCE_DELTA,
    PRESENCE_PARAM, ROOM_PARAM, SINCE_PARAM, ServerEvent, USERNAME_PARAM, WS_PATH, close_code,
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
    /// Connects as `username` to `room`, feeding everything received into
    /// `state`. With `since`, the server sends the messages after that id
    /// instead of the latest page.
    pub(crate) fn open(
        username: &str,
        room: &str,
        since: Option<u64>,
        state: ChatState,
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
        state.status.set(Status::Connecting);

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
            let mut closed = Status::Closed {
                code: ABNORMAL_CLOSURE,
                reason: String::new(),
            };
            // The server's first frames come right after the upgrade (the
            // user list): until one arrives, the handshake may have failed.
            let mut opened = false;
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(Message::Text(text)) => match ServerEvent::from_json(&text) {
                        Ok(event) => {
                            opened = true;
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
            let dropped = matches!(
                closed,
                Status::Closed {
                    code: ABNORMAL_CLOSURE,
                    ..
                }
            );
            if !opened
                && dropped
                && !quiet.get()
                && let Some(refused) = refusal(&path).await
            {
                closed = refused;
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

/// The page's own token bucket, a little under the server's default flood
/// limit: a burst of queued messages (the outbox after a reconnect, a fast
/// typist) goes out as fast as the server takes it instead of being
/// refused with "Slow down" and left "Sending…".
pub(crate) struct Pace {
    tokens: f64,
    at_ms: f64,
}

impl Pace {
    const PER_MS: f64 = DEFAULT_MESSAGE_RATE as f64 * 0.9 / 1000.0;
    const BURST: f64 = (DEFAULT_MESSAGE_BURST - 2) as f64;

    pub(crate) fn new(now_ms: f64) -> Self {
        Pace {
            tokens: Self::BURST,
            at_ms: now_ms,
        }
    }

    /// Takes a token for one frame sent at `now_ms`: how many ms to wait
    /// before sending it.
    pub(crate) fn take(&mut self, now_ms: f64) -> f64 {
        let elapsed = (now_ms - self.at_ms).max(0.0);
        self.tokens = (self.tokens + elapsed * Self::PER_MS).min(Self::BURST) - 1.0;
        self.at_ms = now_ms;
        if self.tokens >= 0.0 {
            0.0
        } else {
            -self.tokens / Self::PER_MS
        }
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
async fn refusal(path: &str) -> Option<Status> {
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
    Some(Status::Closed { code, reason })
}

/// Said with a 401: what a person without a token can do about it. (A
/// word joiner after the `?`, or narrow screens break the line there.)
const TOKEN_HINT: &str =
    " (open Banter with the link you were given: the one that ends in ?\u{2060}accessToken=…)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_frames_never_exceed_the_servers_default_bucket() {
        // 200 frames queued at once, sent when the pace allows.
        let mut pace = Pace::new(0.0);
        let mut now = 0.0;
        let (rate, burst) = (
            f64::from(DEFAULT_MESSAGE_RATE) / 1000.0,
            f64::from(DEFAULT_MESSAGE_BURST),
        );
        let (mut server_tokens, mut server_at) = (burst, 0.0);
        for frame in 0..200 {
            now += pace.take(now);
            server_tokens = (server_tokens + (now - server_at) * rate).min(burst);
            server_at = now;
            assert!(
                server_tokens >= 1.0,
                "frame {frame} at {now} ms would be refused"
            );
            server_tokens -= 1.0;
        }
        // The first 18 go at once, the rest at 9 a second.
        assert!((now - 182.0 / 9.0 * 1000.0).abs() < 1.0, "{now}");
    }
}

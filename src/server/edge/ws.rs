//! The WebSocket endpoints:
//! `GET /start_web_socket?username=NAME[&room=ROOM][&since=ID][&presence=delta]`
//! (JSON events), and an upgrade on a page address, `/` or `/r/ROOM`
//! (`[?username=NAME]`, plain text).
//!
//! Only the HTTP side lives here; once upgraded, the socket belongs to
//! [`super::connection`]. Who may connect is checked *before* the upgrade
//! and answered with an HTTP status ([`super::access`], then
//! [`super::admission`]): a refused client holds nothing. What the client
//! asked for (its name, its room) is checked *after* it, answered with a
//! close frame: a browser never sees the body of a refused handshake, but
//! it does see a close code and reason, which the UI can show.

use std::sync::Arc;

use axum::{
    extract::{
        Extension, FromRequestParts, Query, Request, State,
        ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use tracing::info;

use tokio_util::task::TaskTracker;

use super::{
    access::Access,
    admission::Admission,
    client_addr::ClientAddr,
    connection::{self, Dialect},
};
use crate::{
    protocol::PRESENCE_DELTA,
    server::{
        chat::frame::PresenceStyle,
        config::SocketSettings,
        hub::{Hub, JoinRequest},
        metrics,
    },
};

/// tungstenite's read buffer. Its default (128 KiB) is zero-filled on the
/// first read, so every idle connection would hold 128 KiB of RSS; chat
/// frames are small, and a bigger one just takes a few more reads. 2 KiB
/// rather than 4 brought an idle client from 17.4 to 15.6 KiB, with no
/// change in delivered frames/s (banter-bench, C = 1,000).
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// tungstenite writes its buffer out once it holds this much. The buffer
/// keeps its largest size for the connection's life, so the default
/// (128 KiB) would let one burst (a join snapshot, a backlog) pin that much
/// memory per idle client; 4 KiB still packs a few dozen chat frames into
/// each write.
const WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// Largest frame or message a client may send. Far above the longest chat
/// message, far below what would let one client tie up real memory.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// What the endpoint needs of the server's state. The router's state hands
/// it over (`FromRef`), so the edge never names the whole of it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) hub: Arc<Hub>,
    pub(crate) access: Arc<Access>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) signals: connection::Signals,
    /// Every connection task, so shutdown can wait for their goodbyes.
    pub(crate) connections: TaskTracker,
    pub(crate) settings: SocketSettings,
}

/// No `Debug`: it holds the access token.
#[derive(Deserialize)]
pub(crate) struct JoinParams {
    #[serde(default)]
    username: String,
    #[serde(default)]
    presence: Option<String>,
    #[serde(default)]
    room: Option<String>,
    /// Kept as text so a malformed value gets a close reason, not a 400
    /// the browser never shows.
    #[serde(default)]
    since: Option<String>,
    /// For browsers, which cannot set headers on a WebSocket.
    #[serde(default, rename = "accessToken")]
    access_token: Option<String>,
    /// The page's own origin, when it asks why its socket was refused.
    #[serde(default)]
    origin: Option<String>,
}

/// Checks who is asking, then upgrades to a WebSocket, or answers 426 to a
/// plain request that would have been let in (how the page learns that a
/// failed socket was the network's fault, not a refusal).
pub(crate) async fn start_web_socket(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    Query(params): Query<JoinParams>,
    State(state): State<Endpoint>,
) -> Response {
    let style = match params.presence.as_deref() {
        Some(PRESENCE_DELTA) => PresenceStyle::Delta,
        _ => PresenceStyle::List,
    };
    let wants = Wants {
        room: params.room.clone(),
        style,
        dialect: Dialect::Json,
    };
    open(state, upgrade, client, &headers, params, wants).await
}

/// A WebSocket upgrade on a page address (`/` or `/r/ROOM`) is a plain-text
/// chat in that room (see `connection::dialect`); every other request to
/// those addresses is the page, as before. Layered over the page routes,
/// so the page router needs no second route per path.
pub(crate) async fn page_or_plain_text(
    State(state): State<Endpoint>,
    request: Request,
    next: Next,
) -> Response {
    let wants_socket = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
    let room = match request.uri().path() {
        "/" => None,
        path => match path.strip_prefix("/r/") {
            Some(room) if !room.contains('/') => Some(room.to_owned()),
            _ => return next.run(request).await,
        },
    };
    if !wants_socket {
        return next.run(request).await;
    }
    let (mut parts, _body) = request.into_parts();
    let Some(ClientAddr(client)) = parts.extensions.get::<ClientAddr>().copied() else {
        tracing::error!("no client address on a request");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let params = match Query::<JoinParams>::try_from_uri(&parts.uri) {
        Ok(Query(params)) => params,
        Err(rejection) => return rejection.into_response(),
    };
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &state).await;
    // A malformed handshake is the client's error, said plainly: this
    // address is a page, so "426 Upgrade Required" would be wrong.
    let upgrade = match upgrade {
        Ok(upgrade) => Ok(upgrade),
        Err(rejection) => return rejection.into_response(),
    };
    let wants = Wants {
        room,
        // Deltas are what a plain-text client's join and leave lines are
        // made of (see `connection::dialect`).
        style: PresenceStyle::Delta,
        dialect: Dialect::Text,
    };
    open(state, upgrade, client, &parts.headers, params, wants).await
}

/// RFC 6455 §4.2.1: the key "when decoded, is 16 bytes in length". axum
/// only checks that it is there, and would answer any value with 101 (a
/// handshake without one it has already refused).
fn key_is_valid(headers: &HeaderMap) -> bool {
    use base64::Engine;
    headers.get(header::SEC_WEBSOCKET_KEY).is_none_or(|key| {
        base64::engine::general_purpose::STANDARD
            .decode(key.as_bytes())
            .is_ok_and(|bytes| bytes.len() == 16)
    })
}

/// What a socket is for, once upgraded: where, and how it speaks.
struct Wants {
    room: Option<String>,
    style: PresenceStyle,
    dialect: Dialect,
}

/// Both endpoints from here on: access, then admission, then the upgrade.
async fn open(
    state: Endpoint,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    client: std::net::IpAddr,
    headers: &HeaderMap,
    params: JoinParams,
    wants: Wants,
) -> Response {
    let admitted = state
        .access
        .check(
            headers,
            params.origin.as_deref(),
            params.access_token.as_deref(),
        )
        .and_then(|()| state.admission.admit(client, &params.username));
    let ticket = match admitted {
        Ok(ticket) => ticket,
        Err(refusal) => {
            metrics::refused(refusal.label());
            // The reason, never the token; going-too-fast refusals come in
            // floods, so they are kept out of the default log.
            if refusal.is_rate() {
                tracing::debug!(%client, reason = %refusal, "handshake refused");
            } else {
                info!(%client, reason = %refusal, "handshake refused");
            }
            state.admission.hold_back(&refusal).await;
            return refusal.into_response();
        }
    };
    let upgrade = match upgrade {
        Ok(_) if !key_is_valid(headers) => {
            return (
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key must be the base64 of 16 bytes (RFC 6455, section 4.1).\n",
            )
                .into_response();
        }
        Ok(upgrade) => upgrade,
        Err(WebSocketUpgradeRejection::WebSocketKeyHeaderMissing(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                "A WebSocket handshake needs a Sec-WebSocket-Key header.\n",
            )
                .into_response();
        }
        // Section 4.4: name the version this server speaks.
        Err(WebSocketUpgradeRejection::InvalidWebSocketVersionHeader(_)) => {
            return (
                StatusCode::UPGRADE_REQUIRED,
                [(header::SEC_WEBSOCKET_VERSION, "13")],
                "This server speaks WebSocket version 13.\n",
            )
                .into_response();
        }
        // A plain request: axum would say 400 or 405; the protocol says
        // 426 Upgrade Required.
        Err(_) => {
            return (
                StatusCode::UPGRADE_REQUIRED,
                [(header::UPGRADE, "websocket")],
                "This endpoint speaks WebSocket only: connect with a WebSocket client.\n",
            )
                .into_response();
        }
    };
    let Endpoint {
        hub,
        signals,
        connections,
        settings,
        ..
    } = state;
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let request = JoinRequest {
                username: params.username,
                room: wants.room,
                style: wants.style,
                since: params.since,
            };
            connections.track_future(connection::run(
                socket,
                request,
                wants.dialect,
                hub,
                signals,
                settings,
                ticket,
            ))
        })
}

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
    extract::{Extension, FromRequestParts, Query, Request, State},
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
    wire::upgrade::{NotUpgrade, Upgrade},
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
    upgrade: Result<Upgrade, NotUpgrade>,
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
    let upgrade = Upgrade::from_request_parts(&mut parts, &state).await;
    let wants = Wants {
        room,
        // Deltas are what a plain-text client's join and leave lines are
        // made of (see `connection::dialect`).
        style: PresenceStyle::Delta,
        dialect: Dialect::Text,
    };
    open(state, upgrade, client, &parts.headers, params, wants).await
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
    upgrade: Result<Upgrade, NotUpgrade>,
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
    // Only now, so that a plain GET learns nothing about a server that
    // would have refused it anyway.
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(not) => return not.into_response(),
    };
    let Endpoint {
        hub,
        signals,
        connections,
        settings,
        ..
    } = state;
    upgrade.respond(move |socket| {
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

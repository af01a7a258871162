//! The opening handshake (RFC 6455 §4.2), server side, and the TCP stream
//! it hands over.
//!
//! Banter does its own rather than axum's `WebSocketUpgrade` for two
//! reasons. It gets the raw `TcpStream` back (hyper's `Upgraded` downcast
//! to what the accept loop gave it), so the connection reads and writes
//! the socket itself, with no WebSocket library's buffers or locks between
//! a room and the kernel. And it checks what axum does not: that the key
//! is the base64 of 16 bytes (§4.2.1), answering 400 if not.

use axum::{
    body::Body,
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use base64::Engine;
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::net::TcpStream;

/// §1.3: appended to the client's key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A valid WebSocket handshake, ready to be answered with 101.
pub(crate) struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Why a request is not a handshake this server accepts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotUpgrade {
    /// Not a WebSocket handshake at all (a plain GET, another method).
    Plain,
    /// A handshake without a `Sec-WebSocket-Key`, or one that is not the
    /// base64 of 16 bytes: 400.
    BadKey,
    /// Another protocol version than 13: 426, naming 13 (§4.4).
    Version,
}

impl IntoResponse for NotUpgrade {
    fn into_response(self) -> Response {
        match self {
            NotUpgrade::Plain => (
                StatusCode::UPGRADE_REQUIRED,
                [(header::UPGRADE, "websocket")],
                "This endpoint speaks WebSocket only: connect with a WebSocket client.\n",
            )
                .into_response(),
            NotUpgrade::BadKey => (
                StatusCode::BAD_REQUEST,
                "Sec-WebSocket-Key must be the base64 of 16 bytes (RFC 6455, section 4.1).\n",
            )
                .into_response(),
            NotUpgrade::Version => (
                StatusCode::UPGRADE_REQUIRED,
                [(header::SEC_WEBSOCKET_VERSION, "13")],
                "This server speaks WebSocket version 13.\n",
            )
                .into_response(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotUpgrade;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, NotUpgrade> {
        let key = check(&parts.method, &parts.headers)?;
        // Present on every request hyper can upgrade (`with_upgrades` in
        // the accept loop); missing only if something in between took it.
        let on_upgrade = parts
            .extensions
            .remove::<OnUpgrade>()
            .ok_or(NotUpgrade::Plain)?;
        Ok(Upgrade { key, on_upgrade })
    }
}

/// §4.2.1, what the client's opening handshake must be; the key if so.
fn check(method: &Method, headers: &HeaderMap) -> Result<HeaderValue, NotUpgrade> {
    let has = |name, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if method != Method::GET
        || !has(header::UPGRADE, "websocket")
        || !has(header::CONNECTION, "upgrade")
    {
        return Err(NotUpgrade::Plain);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return Err(NotUpgrade::Version);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(NotUpgrade::BadKey)?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if !decoded.is_ok_and(|bytes| bytes.len() == 16) {
        return Err(NotUpgrade::BadKey);
    }
    Ok(key.clone())
}

/// §4.2.2 step 5.4: base64 of the SHA-1 of the key and the GUID.
fn accept(key: &[u8]) -> String {
    let digest = Sha1::new().chain_update(key).chain_update(GUID).finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A socket after its handshake: the stream, and what the client had
/// already sent past the handshake (its first frames, if it did not wait).
pub(crate) struct Upgraded {
    pub(crate) tcp: TcpStream,
    pub(crate) early: Bytes,
}

impl Upgrade {
    /// The 101 answer; `run` gets the socket once hyper has sent it.
    pub(crate) fn respond<F, Fut>(self, run: F) -> Response
    where
        F: FnOnce(Upgraded) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Upgrade { key, on_upgrade } = self;
        let accept = accept(key.as_bytes());
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(err) => {
                    tracing::debug!(%err, "the upgrade did not complete");
                    return;
                }
            };
            match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    run(Upgraded {
                        tcp: parts.io.into_inner(),
                        early: parts.read_buf,
                    })
                    .await
                }
                Err(_) => tracing::error!("an upgraded connection is not a TCP stream"),
            }
        });
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        match HeaderValue::from_str(&accept) {
            Ok(value) => {
                headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
            }
            // Base64 is always a valid header value.
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    const GOOD: &[(&str, &str)] = &[
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn the_sample_handshake_of_the_rfc() {
        let key = check(&Method::GET, &headers(GOOD)).expect("valid");
        assert_eq!(accept(key.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn what_is_refused_and_how() {
        let with = |name: &'static str, value: &'static str| {
            let mut map = headers(GOOD);
            map.insert(name, HeaderValue::from_static(value));
            map
        };
        let without = |name: &'static str| {
            let mut map = headers(GOOD);
            map.remove(name);
            map
        };
        assert_eq!(check(&Method::POST, &headers(GOOD)), Err(NotUpgrade::Plain));
        assert_eq!(
            check(&Method::GET, &without("upgrade")),
            Err(NotUpgrade::Plain)
        );
        assert_eq!(
            check(&Method::GET, &with("sec-websocket-version", "8")),
            Err(NotUpgrade::Version)
        );
        assert_eq!(
            check(&Method::GET, &without("sec-websocket-key")),
            Err(NotUpgrade::BadKey)
        );
        for key in ["", "AAAA", "not-base64!!", "AAAAAAAAAAAAAAAAAAAA"] {
            assert_eq!(
                check(&Method::GET, &with("sec-websocket-key", key)),
                Err(NotUpgrade::BadKey),
                "{key}"
            );
        }
    }
}

//! Why a request was turned away before it became a socket, and how that
//! is said: an HTTP status and one plain-text sentence, which the page
//! shows as is. Shared by the access checks and the admission limits.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

/// Why a request was turned away before it became a socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("Connections from {0} are not allowed")]
    ForeignOrigin(String),
    #[error("This server needs an access token")]
    MissingToken,
    #[error("The access token was refused")]
    WrongToken,
    #[error("Too many connection attempts from your address; wait a moment")]
    HandshakeRate { retry_after_secs: u64 },
    #[error("This name was sending too fast; try again in {retry_after_secs} s")]
    CoolingDown { retry_after_secs: u64 },
    #[error("Too many connections from your address")]
    TooManyFromAddress,
    #[error("The server is full; try again later")]
    ServerFull,
}

impl Refusal {
    /// A refusal for going too fast: held back, and logged at debug.
    pub(crate) fn is_rate(&self) -> bool {
        matches!(
            self,
            Refusal::HandshakeRate { .. } | Refusal::CoolingDown { .. }
        )
    }

    /// A short name for counting (`/metrics`).
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Refusal::ForeignOrigin(_) => "origin",
            Refusal::MissingToken => "no-token",
            Refusal::WrongToken => "wrong-token",
            Refusal::HandshakeRate { .. } => "handshake-rate",
            Refusal::CoolingDown { .. } => "cooling-down",
            Refusal::TooManyFromAddress => "per-address",
            Refusal::ServerFull => "full",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::ForeignOrigin(_) | Refusal::WrongToken => StatusCode::FORBIDDEN,
            Refusal::MissingToken => StatusCode::UNAUTHORIZED,
            Refusal::HandshakeRate { .. }
            | Refusal::CoolingDown { .. }
            | Refusal::TooManyFromAddress => StatusCode::TOO_MANY_REQUESTS,
            Refusal::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The status, with the sentence as a plain-text body the page shows as is.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status(), format!("{self}\n")).into_response();
        let headers = response.headers_mut();
        match &self {
            Refusal::MissingToken => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Refusal::HandshakeRate { retry_after_secs }
            | Refusal::CoolingDown { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Refusal::TooManyFromAddress | Refusal::ServerFull => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        response
    }
}

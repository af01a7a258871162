//! The network edge: from an accepted TCP connection to a running chat
//! socket.
//!
//! In the order a connection meets them:
//! - [`accept`]: the accept loop (header timeout, peer addresses).
//! - [`client_addr`]: the client's address, also behind trusted proxies.
//! - [`access`]: the Origin check and access tokens.
//! - [`admission`]: connection counts and handshake pacing.
//! - [`refusal`]: each refusal's status and sentence.
//! - [`ws`]: the HTTP side of `/start_web_socket` (checks, upgrade or 426).
//! - [`wire`]: WebSocket itself: the handshake, frames in and out.
//! - [`connection`]: one socket's reader and writer tasks, which talk to
//!   the chat only through the hub.
//! - [`flood`]: the per-socket message rate limit.
//!
//! Nothing here knows whether the chat runs in one process or many.

pub(crate) mod accept;
pub(crate) mod access;
pub(crate) mod admission;
pub(crate) mod client_addr;
pub(crate) mod connection;
pub(crate) mod flood;
pub(crate) mod refusal;
pub(crate) mod wire;
pub(crate) mod ws;

//! The browser side of the chat: the reactive state the components render,
//! the WebSocket that feeds it, and what the tab remembers (username,
//! access token).
//!
//! Compiled into both halves (the server renders the components that name
//! these types) but only *run* in the browser: everything here that touches
//! a browser API is called from effects and event handlers, which never run
//! during server rendering.

pub(crate) mod http;
pub(crate) mod location;
pub(crate) mod rooms_api;
pub(crate) mod session;
pub(crate) mod socket;
pub(crate) mod state;

pub(crate) use socket::Connection;
pub(crate) use state::ChatState;

/// A fresh id for a message typed here: 104 random bits as hex. It only
/// has to be unique among this user's messages in a room, so `Math.random`
/// will do (`crypto.randomUUID` is missing on plain-http LAN addresses).
pub(crate) fn new_client_id() -> String {
    let part = || (js_sys::Math::random() * (1u64 << 52) as f64) as u64;
    format!("{:013x}{:013x}", part(), part())
}

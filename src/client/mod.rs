//! The browser side of the chat: the reactive state the components render,
//! the WebSocket that feeds it, and what the tab remembers (username,
//! access token).
//!
//! Compiled into both halves (the server renders the components that name
//! these types) but only *run* in the browser: everything here that touches
//! a browser API is called from effects and event handlers, which never run
//! during server rendering.

pub mod backoff;
pub mod http;
pub mod location;
pub mod rooms_api;
pub mod session;
pub mod socket;
pub mod state;

pub use socket::Connection;
pub use state::{ChatState, Pending, Status};

/// A fresh id for a message typed here: 104 random bits as hex. It only
/// has to be unique among this user's messages in a room, so `Math.random`
/// will do (`crypto.randomUUID` is missing on plain-http LAN addresses).
pub fn new_client_id() -> String {
    let part = || (js_sys::Math::random() * (1u64 << 52) as f64) as u64;
    format!("{:013x}{:013x}", part(), part())
}

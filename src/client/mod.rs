//! The browser side of the chat: the reactive state the components render,
//! the WebSocket that feeds it, and the tab's remembered username.
//!
//! Compiled into both halves (the server renders the components that name
//! these types) but only *run* in the browser: everything here that touches
//! a browser API is called from effects and event handlers, which never run
//! during server rendering.

pub mod location;
pub mod session;
pub mod socket;
pub mod state;

pub use socket::Connection;
pub use state::{ChatState, Status};

//! Banter: a real-time chat web app, written entirely in Rust.
//!
//! One crate builds both halves. The server (`ssr` feature) renders the page,
//! upgrades WebSockets and fans chat events out; the browser half (`hydrate`
//! feature, compiled to WASM) takes over the rendered page and talks to the
//! server over one WebSocket.
//!
//! # Layout
//!
//! - [`protocol`]: the wire events, shared by both halves (serde only).
//! - [`app`]: the page shell and the root component.
//! - [`components`]: the UI: join form, message list, user list, input.
//! - [`supervisor`]: reconnecting, resuming and resending, decided once for
//!   every client (the page, the terminal client, the help bot).
//! - [`client`]: the browser side of the chat: socket, session, reactive state.
//! - `server` (`ssr` only): configuration, the WebSocket handler, the
//!   hub and each room's fan-out, presence coalescing and graceful shutdown.
//! - `native` and `cli` (`ssr` only): Banter's client outside the browser,
//!   and `banter-cli` on it; `transcript`: the chat as lines of text, for
//!   the CLI and the server's plain-text sockets.
//!
//! `ARCHITECTURE.md` follows one message from a keypress to every screen.

// Leptos views are deeply nested types; release builds (which do not erase
// them) need more room than the default 128.
#![recursion_limit = "256"]

pub(crate) mod app;
pub(crate) mod client;
pub(crate) mod components;
pub mod protocol;
pub(crate) mod supervisor;
#[cfg(feature = "ssr")]
pub(crate) mod transcript;

#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "ssr")]
pub(crate) mod native;

#[cfg(feature = "ssr")]
pub mod cli;

#[cfg(test)]
mod test_support;

/// Entry point of the WASM half: attach to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console while developing; the release bundle
    // leaves the hook (and the formatting it pulls in) out to stay small.
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}

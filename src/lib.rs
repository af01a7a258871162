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
//! - [`client`]: the browser side of the chat: socket, session, reactive state.
//! - `server` (`ssr` only): configuration, the WebSocket handler, the
//!   broadcast hub, presence coalescing and graceful shutdown.
//!
//! `ARCHITECTURE.md` follows one message from a keypress to every screen.

// Leptos views are deeply nested types; release builds (which do not erase
// them) need more room than the default 128.
#![recursion_limit = "256"]

pub(crate) mod app;
pub(crate) mod client;
pub(crate) mod components;
pub mod protocol;

#[cfg(feature = "ssr")]
pub mod server;

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

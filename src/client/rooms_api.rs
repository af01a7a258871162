//! The room list, from `GET /api/rooms`.
//!
//! Plain `fetch` through web-sys rather than an HTTP client crate: one GET
//! of a small JSON list does not justify the bytes in the WASM.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::protocol::ROOMS_API_PATH;

/// What the room list shows of each [`crate::protocol::RoomSummary`]; the
/// other fields are skipped unparsed, which is code the WASM does without.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ListedRoom {
    pub name: String,
    pub online: usize,
}

pub async fn fetch_rooms() -> Result<Vec<ListedRoom>, String> {
    let failed = |_| "could not load the room list".to_string();
    let response = JsFuture::from(leptos::prelude::window().fetch_with_str(ROOMS_API_PATH))
        .await
        .map_err(failed)?;
    let response: web_sys::Response = response.dyn_into().map_err(failed)?;
    if !response.ok() {
        return Err(format!("the room list answered {}", response.status()));
    }
    let text = JsFuture::from(response.text().map_err(failed)?)
        .await
        .map_err(failed)?;
    let text = text.as_string().unwrap_or_default();
    // The error is not formatted: serde's messages would bring float
    // printing (its `Unexpected::Float`) into the WASM, ~6 KB of brotli.
    serde_json::from_str(&text).map_err(|_| "the room list could not be read".to_string())
}

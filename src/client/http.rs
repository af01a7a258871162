//! `GET` through the browser's own `fetch`.
//!
//! Plain web-sys rather than an HTTP client crate: a couple of small GETs
//! of this page's own server do not justify the bytes in the WASM.

use leptos::prelude::window;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// GETs `url` and returns the status and the body as text, whatever the
/// status; `None` when no answer came (the network or the server is down).
pub(crate) async fn get(url: &str) -> Option<(u16, String)> {
    let response = JsFuture::from(window().fetch_with_str(url)).await.ok()?;
    // `fetch` resolves to nothing but a `Response`.
    let response: web_sys::Response = response.unchecked_into();
    let text = JsFuture::from(response.text().ok()?).await.ok()?;
    Some((response.status(), text.as_string().unwrap_or_default()))
}

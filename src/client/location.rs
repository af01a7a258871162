//! Which page is shown, and moving between rooms without a reload.
//!
//! Paths: `/` is the default room, `/r/ROOM` any room, anything else is
//! not found. Both halves read the path (the server from the request, the
//! browser from the address bar) and must agree, or hydration would attach
//! to the wrong page.

use crate::protocol::{DEFAULT_ROOM, parse_room};

/// What a path shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Page {
    Room(String),
    NotFound,
}

/// The page for `path`.
pub(crate) fn page_for(path: &str) -> Page {
    if path == "/" {
        return Page::Room(DEFAULT_ROOM.to_string());
    }
    match path
        .strip_prefix("/r/")
        .map(|room| room.trim_end_matches('/'))
    {
        Some(room) => parse_room(room).map_or(Page::NotFound, Page::Room),
        None => Page::NotFound,
    }
}

/// The address of a room.
pub(crate) fn room_path(room: &str) -> String {
    if room == DEFAULT_ROOM {
        "/".to_string()
    } else {
        format!("/r/{room}")
    }
}

/// The path of the page being rendered.
pub(crate) fn current_path() -> String {
    #[cfg(feature = "ssr")]
    {
        leptos::prelude::use_context::<axum::http::request::Parts>()
            .map(|parts| parts.uri.path().to_owned())
            .unwrap_or_else(|| "/".to_owned())
    }
    #[cfg(not(feature = "ssr"))]
    {
        leptos::prelude::window()
            .location()
            .pathname()
            .unwrap_or_else(|_| "/".to_owned())
    }
}

/// Answers the request being rendered with 404 (server only; the browser
/// has nothing to do).
pub(crate) fn mark_not_found() {
    #[cfg(feature = "ssr")]
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
}

/// Puts `room`'s address in the address bar, as a new history entry.
pub(crate) fn push_room(room: &str) {
    if let Ok(history) = leptos::prelude::window().history() {
        let _ =
            history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&room_path(room)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_rooms() {
        assert_eq!(page_for("/"), Page::Room("general".into()));
        assert_eq!(page_for("/r/Rust"), Page::Room("rust".into()));
        assert_eq!(page_for("/r/rust/"), Page::Room("rust".into()));
        assert_eq!(page_for("/r/"), Page::NotFound);
        assert_eq!(page_for("/r/a%20b"), Page::NotFound);
        assert_eq!(page_for("/nope"), Page::NotFound);
        assert_eq!(room_path("general"), "/");
        assert_eq!(room_path("rust"), "/r/rust");
    }
}

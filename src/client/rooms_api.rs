//! The room list, from `GET /api/rooms`.

use super::{http, session};
use crate::protocol::ROOMS_API_PATH;

/// What the room list shows of each [`crate::protocol::RoomSummary`]; the
/// other fields are skipped unparsed, which is code the WASM does without.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct ListedRoom {
    pub(crate) name: String,
    pub(crate) online: usize,
}

/// The list, or `None` if it could not be had. No reason is kept: the list
/// is refreshed every few seconds and a failed refresh just keeps the old
/// one (the socket's status says why the server cannot be reached).
pub(crate) async fn fetch_rooms() -> Option<Vec<ListedRoom>> {
    let url = session::with_access_token(ROOMS_API_PATH.to_string());
    let (status, text) = http::get(&url).await?;
    if status != 200 {
        return None;
    }
    // Not `serde_json::Error`'s message: it would bring float printing (its
    // `Unexpected::Float`) into the WASM, ~6 KB of brotli.
    serde_json::from_str(&text).ok()
}

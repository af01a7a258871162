//! `GET /api/rooms`: the rooms worth showing in a room list — those with
//! people in them now, then those with recent messages.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    extract::{Query, State},
    http::HeaderMap,
};

use crate::{
    protocol::RoomSummary,
    server::{
        edge::access::{Access, Refusal, TokenQuery},
        hub::Hub,
        storage::format_ts,
    },
};

pub(crate) use crate::protocol::ROOMS_API_PATH as PATH;

/// Stored rooms considered, newest activity first.
const RECENT_ROOMS: usize = 50;

/// Room names are the server's business: with tokens configured, only a
/// client holding one may list them.
pub(crate) async fn rooms(
    State(access): State<Arc<Access>>,
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Result<Json<Vec<RoomSummary>>, Refusal> {
    access.check_token(&headers, query.access_token.as_deref())?;
    let mut rooms: HashMap<String, RoomSummary> = HashMap::new();
    match hub.recent_rooms(RECENT_ROOMS).await {
        Ok(stored) => {
            for (name, last_id, ts) in stored {
                rooms.insert(
                    name.clone(),
                    RoomSummary {
                        name,
                        online: 0,
                        last_id: Some(last_id),
                        last_ts: Some(format_ts(ts)),
                    },
                );
            }
        }
        // The live rooms are still worth answering with.
        Err(err) => tracing::error!(%err, "cannot list stored rooms"),
    }
    for (name, online) in hub.online_rooms() {
        rooms
            .entry(name.to_string())
            .or_insert_with(|| RoomSummary {
                name: name.to_string(),
                online: 0,
                last_id: None,
                last_ts: None,
            })
            .online = online;
    }
    let mut rooms: Vec<RoomSummary> = rooms.into_values().collect();
    rooms.sort_by(|a, b| {
        (b.online > 0)
            .cmp(&(a.online > 0))
            .then(b.last_id.cmp(&a.last_id))
            .then(a.name.cmp(&b.name))
    });
    Ok(Json(rooms))
}

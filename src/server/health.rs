//! `GET /healthz`: liveness for load balancers and humans.

use axum::{Json, extract::State};
use serde::Serialize;

use super::AppState;

#[derive(Debug, Serialize)]
pub struct Health {
    status: &'static str,
    /// Users connected to this process right now.
    clients: usize,
}

pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        clients: state.hub.len(),
    })
}

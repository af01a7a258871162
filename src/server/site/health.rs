//! `GET /healthz`: liveness for load balancers and humans.

use axum::{Json, extract::State};
use serde::Serialize;

use std::sync::Arc;

use crate::server::hub::Hub;

#[derive(Debug, Serialize)]
pub(crate) struct Health {
    status: &'static str,
    /// Users connected to this process right now.
    clients: usize,
}

pub(crate) async fn healthz(State(hub): State<Arc<Hub>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        clients: hub.len(),
    })
}

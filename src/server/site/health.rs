//! `GET /healthz`: liveness for load balancers and humans.

use axum::{Json, extract::State};
use serde::Serialize;

use std::sync::Arc;

use crate::server::hub::Hub;

#[derive(Debug, Serialize)]
pub(crate) struct Health {
    /// `ok`, or `degraded` while a dependency is down (the process still
    /// serves what it can: sockets stay open, history is read).
    status: &'static str,
    /// Which dependency, when degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    down: Option<&'static str>,
    /// Users connected to this process right now.
    clients: usize,
}

pub(crate) async fn healthz(State(hub): State<Arc<Hub>>) -> Json<Health> {
    Json(Health {
        status: if hub.degraded().is_some() {
            "degraded"
        } else {
            "ok"
        },
        down: hub.degraded(),
        clients: hub.len(),
    })
}

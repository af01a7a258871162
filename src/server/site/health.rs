//! `GET /healthz`: liveness for load balancers and humans; `GET /metrics`:
//! the counters of [`metrics`], for Prometheus.

use axum::{Json, extract::State};
use serde::Serialize;

use std::sync::Arc;

use axum::{http::header, response::IntoResponse};

use crate::server::{hub::Hub, metrics};

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

/// Prometheus text format, version 0.0.4.
pub(crate) async fn metrics(State(hub): State<Arc<Hub>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(hub.len()),
    )
}

//! What the server offers besides the chat socket.
//!
//! - [`bundle`]: Leptos options baked in from the build; the static files.
//! - [`room_list`]: `GET /api/rooms`.
//! - [`health`]: `GET /healthz`.

pub(crate) mod bundle;
pub(crate) mod health;
pub(crate) mod room_list;

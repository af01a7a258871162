//! The connection pill in the top bar.

use leptos::prelude::*;

use crate::client::Status;

#[component]
pub(crate) fn ConnectionStatus(
    status: RwSignal<Status>,
    #[prop(into)] on_reconnect: Callback<()>,
) -> impl IntoView {
    let label = move || match status.get() {
        Status::Connecting => "Connecting…".to_string(),
        Status::Connected => "Connected".to_string(),
        Status::Waiting { reason, .. } if !reason.is_empty() => {
            format!("Offline ({reason}): reconnecting…")
        }
        Status::Waiting { .. } => "Offline: reconnecting…".to_string(),
        Status::Closed { reason, .. } if !reason.is_empty() => format!("Disconnected: {reason}"),
        Status::Closed { .. } => "Disconnected".to_string(),
    };
    let state = move || match status.get() {
        Status::Connecting => "connecting",
        Status::Connected => "connected",
        Status::Waiting { .. } | Status::Closed { .. } => "disconnected",
    };
    view! {
        <div class="status" data-state=state role="status" data-testid="status">
            <span class="dot" aria-hidden="true"></span>
            <span class="label">{label}</span>
            {move || matches!(status.get(), Status::Waiting { .. } | Status::Closed { .. }).then(|| view! {
                <button class="link" on:click=move |_| on_reconnect.run(())>"Reconnect now"</button>
            })}
        </div>
    }
}

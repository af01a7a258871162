//! The connection pill in the top bar.

use leptos::prelude::*;

use crate::supervisor::Link;

#[component]
pub(crate) fn ConnectionStatus(
    status: RwSignal<Link>,
    #[prop(into)] on_reconnect: Callback<()>,
) -> impl IntoView {
    let label = move || match status.get() {
        Link::Connecting => "Connecting…".to_string(),
        Link::Connected => "Connected".to_string(),
        Link::Retrying { reason, .. } if !reason.is_empty() => {
            format!("Offline ({reason}): reconnecting…")
        }
        Link::Retrying { .. } => "Offline: reconnecting…".to_string(),
        Link::Refused { reason } => format!("Disconnected: {reason}"),
        Link::Closed => "Disconnected".to_string(),
    };
    let state = move || match status.get() {
        Link::Connecting => "connecting",
        Link::Connected => "connected",
        _ => "disconnected",
    };
    view! {
        <div class="status" data-state=state role="status" data-testid="status">
            <span class="dot" aria-hidden="true"></span>
            <span class="label">{label}</span>
            {move || matches!(status.get(), Link::Retrying { .. }).then(|| view! {
                <button class="link" on:click=move |_| on_reconnect.run(())>"Reconnect now"</button>
            })}
        </div>
    }
}

//! The join screen: pick a name.

use leptos::{ev::SubmitEvent, html, prelude::*};

use crate::protocol::{MAX_USERNAME_CHARS, parse_username};

/// A real form: before the WASM loads it submits as `GET /?name=…`, which
/// the client picks up once it starts (see `client::session`).
#[component]
pub(crate) fn JoinForm(
    #[prop(into)] on_join: Callback<String>,
    /// Why the last attempt was refused (e.g. the name is taken).
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let input: NodeRef<html::Input> = NodeRef::new();
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        // Read the element, not a signal: text typed before hydration
        // finished is in the DOM but was never seen by an input handler.
        let Some(field) = input.get() else { return };
        match parse_username(&field.value()) {
            Ok(name) => on_join.run(name.to_owned()),
            Err(err) => {
                error.set(Some(err.to_string()));
                let _ = field.focus();
            }
        }
    };
    view! {
        <main class="join">
            // No action: the no-JS GET stays on this room's address.
            <form class="card" method="get" on:submit=submit>
                <h1 class="brand">"Banter"</h1>
                <p class="tagline">"Real-time chat. Pick a name and jump in."</p>
                <label for="join-name">"Your name"</label>
                <input
                    id="join-name"
                    name="name"
                    node_ref=input
                    type="text"
                    autocomplete="nickname"
                    maxlength=MAX_USERNAME_CHARS
                    required
                    autofocus
                    aria-invalid=move || error.get().is_some().to_string()
                    aria-describedby="join-error"
                />
                <p id="join-error" class="error" role="alert" data-testid="join-error">
                    {move || error.get()}
                </p>
                <button type="submit">"Join the chat"</button>
            </form>
        </main>
    }
}

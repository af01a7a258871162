//! The input form: Enter sends, the field clears and keeps focus. It stays
//! usable while offline: what is typed then waits in the outbox.

use leptos::{ev::SubmitEvent, html, prelude::*};

use crate::{protocol::MAX_MESSAGE_CHARS, supervisor::Link};

#[component]
pub(crate) fn MessageInput(
    /// Sends (or queues) a message; returns whether it was taken.
    #[prop(into)]
    on_send: Callback<String, bool>,
    /// The user typed something (throttled by the caller).
    #[prop(into)]
    on_typing: Callback<()>,
    /// The connection (only changes the hint). The signal itself rather
    /// than a derived `Signal<bool>`, which costs the WASM more.
    status: RwSignal<Link>,
) -> impl IntoView {
    let input: NodeRef<html::Input> = NodeRef::new();
    // `autofocus` only acts on page load; the chat appears later, so focus
    // the field once it is in the document.
    Effect::new(move |_| {
        if let Some(field) = input.get() {
            let _ = field.focus();
        }
    });
    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        let Some(field) = input.get() else { return };
        let text = field.value();
        if text.trim().is_empty() {
            return;
        }
        if on_send.run(text) {
            field.set_value("");
        }
        let _ = field.focus();
    };
    view! {
        <form class="composer" on:submit=submit>
            <input
                node_ref=input
                type="text"
                aria-label="Message"
                placeholder=move || {
                    if status.get() == Link::Connected { "Write a message…" } else { "Offline: messages will be sent on reconnecting" }
                }
                maxlength=MAX_MESSAGE_CHARS
                autocomplete="off"
                enterkeyhint="send"
                on:input=move |_| on_typing.run(())
            />
            <button type="submit">"Send"</button>
        </form>
    }
}

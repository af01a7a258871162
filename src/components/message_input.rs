//! The input form: Enter sends, the field clears and keeps focus.

use leptos::{ev::SubmitEvent, html, prelude::*};

use crate::protocol::MAX_MESSAGE_CHARS;

#[component]
pub fn MessageInput(
    /// Sends a message; returns whether it was handed to the connection.
    #[prop(into)]
    on_send: Callback<String, bool>,
    #[prop(into)] enabled: Signal<bool>,
) -> impl IntoView {
    let input: NodeRef<html::Input> = NodeRef::new();
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
                placeholder=move || if enabled.get() { "Write a message…" } else { "Waiting for the connection…" }
                maxlength=MAX_MESSAGE_CHARS
                autocomplete="off"
                enterkeyhint="send"
                disabled=move || !enabled.get()
                autofocus
            />
            <button type="submit" disabled=move || !enabled.get()>"Send"</button>
        </form>
    }
}

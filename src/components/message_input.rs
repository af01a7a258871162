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
    // `autofocus` only acts on page load; the chat appears later, and again
    // after each reconnect, so focus the field whenever it comes alive.
    // Deferred a frame: the `disabled` attribute is lifted by a render
    // effect, and a disabled field cannot take focus.
    Effect::new(move |_| {
        if enabled.get() {
            request_animation_frame(move || {
                if let Some(field) = input.get_untracked() {
                    let _ = field.focus();
                }
            });
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
                placeholder=move || if enabled.get() { "Write a message…" } else { "Waiting for the connection…" }
                maxlength=MAX_MESSAGE_CHARS
                autocomplete="off"
                enterkeyhint="send"
                disabled=move || !enabled.get()
            />
            <button type="submit" disabled=move || !enabled.get()>"Send"</button>
        </form>
    }
}

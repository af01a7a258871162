//! The conversation, newest at the bottom.

use leptos::{html, prelude::*};

use crate::protocol::ChatMessage;

/// How close to the bottom (px) still counts as "reading the newest", so
/// new messages keep the view pinned to the bottom.
const STICK_THRESHOLD_PX: i32 = 48;

#[component]
pub fn MessageList(messages: RwSignal<Vec<ChatMessage>>, me: String) -> impl IntoView {
    let me = StoredValue::new(me);
    let list: NodeRef<html::Ol> = NodeRef::new();
    // Follow new messages unless the user has scrolled up to read.
    let stick_to_bottom = StoredValue::new(true);
    let on_scroll = move |_| {
        if let Some(el) = list.get() {
            let from_bottom = el.scroll_height() - el.scroll_top() - el.client_height();
            stick_to_bottom.set_value(from_bottom <= STICK_THRESHOLD_PX);
        }
    };
    Effect::new(move |_| {
        // Your own message always brings you down to it, as in any chat.
        let last_is_mine = messages.with(|all| {
            all.last()
                .is_some_and(|m| me.with_value(|me| *me == m.username))
        });
        if last_is_mine || stick_to_bottom.get_value() {
            // After the browser has laid out the new rows.
            request_animation_frame(move || {
                if let Some(el) = list.get_untracked() {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });

    view! {
        <ol class="messages" node_ref=list on:scroll=on_scroll aria-label="Messages" aria-live="polite">
            <Show when=move || messages.with(|m| m.is_empty())>
                <li class="empty">"No messages yet. Say hello!"</li>
            </Show>
            <For
                each=move || messages.get()
                key=|message| message.id
                children=move |message| {
                    let own = me.with_value(|me| *me == message.username);
                    view! { <MessageRow message own/> }
                }
            />
        </ol>
    }
}

#[component]
fn MessageRow(message: ChatMessage, own: bool) -> impl IntoView {
    let time = local_time(&message.ts);
    view! {
        <li class="message" class:own=own data-testid="message" data-id=message.id>
            <div class="meta">
                <span class="author">{message.username}</span>
                <time datetime=message.ts.clone()>{time}</time>
            </div>
            // Text, never HTML: Leptos escapes it, so a message cannot inject markup.
            <p class="text">{message.message}</p>
        </li>
    }
}

/// `HH:MM` in the reader's time zone. Rows only exist in the browser (they
/// arrive over the socket), so this never runs on the server.
fn local_time(ts: &str) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(ts));
    if date.get_time().is_nan() {
        return String::new();
    }
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

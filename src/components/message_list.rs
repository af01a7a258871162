//! The conversation, newest at the bottom, older pages loaded on the way
//! up, and the messages still on their way out shown as sending.

use leptos::{html, prelude::*};

use crate::{client::ChatState, protocol::ChatMessage, supervisor::Pending};

/// How close to the bottom (px) still counts as "reading the newest", so
/// new messages keep the view pinned to the bottom.
const STICK_THRESHOLD_PX: i32 = 48;
/// How close to the top (px) asks for the next older page.
const LOAD_THRESHOLD_PX: i32 = 80;

#[component]
pub(crate) fn MessageList(
    state: ChatState,
    me: String,
    #[prop(into)] on_load_older: Callback<()>,
) -> impl IntoView {
    let me = StoredValue::new(me);
    let list: NodeRef<html::Ol> = NodeRef::new();
    let messages = state.messages;
    // Follow new messages unless the user has scrolled up to read.
    let stick_to_bottom = StoredValue::new(true);
    // When older messages are put in front, the view must stay on what the
    // reader was looking at: remember the height before, restore after.
    let height_before_load = StoredValue::new(None::<i32>);
    // Only a move up lets go of the bottom. Messages that arrive between our
    // own scroll to the bottom and its scroll event make the view look
    // scrolled up when it was not (found by a Playwright run with paced
    // messages); they never make scroll_top smaller.
    let last_top = StoredValue::new(0);
    let on_scroll = move |_| {
        let Some(el) = list.get() else { return };
        let top = el.scroll_top();
        let at_bottom = el.scroll_height() - top - el.client_height() <= STICK_THRESHOLD_PX;
        if at_bottom || top < last_top.get_value() {
            stick_to_bottom.set_value(at_bottom);
        }
        last_top.set_value(top);
        if el.scroll_top() <= LOAD_THRESHOLD_PX
            && state.more.get_untracked()
            && !state.loading.get_untracked()
        {
            height_before_load.set_value(Some(el.scroll_height()));
            on_load_older.run(());
        }
    };
    let first_id = Memo::new(move |_| messages.with(|all| all.first().map(|m| m.id)));
    Effect::new(move |previous_first: Option<Option<u64>>| {
        let first = first_id.get();
        let prepended =
            matches!((previous_first.flatten(), first), (Some(old), Some(new)) if new < old);
        let last_is_mine = messages.with(|all| {
            all.last()
                .is_some_and(|m| me.with_value(|me| *me == m.username))
        });
        let pending = state.pending.with(|p| !p.is_empty());
        let restore = height_before_load.get_value();
        request_animation_frame(move || {
            let Some(el) = list.get_untracked() else {
                return;
            };
            if prepended && let Some(before) = restore {
                height_before_load.set_value(None);
                el.set_scroll_top(el.scroll_top() + el.scroll_height() - before);
            } else if last_is_mine || pending || stick_to_bottom.get_value() {
                // Your own message always brings you down to it.
                el.set_scroll_top(el.scroll_height());
            }
        });
        first
    });

    let rows = move || {
        let mut rows: Vec<Row> = messages.with(|all| {
            all.iter()
                .map(|message| Row {
                    message: message.clone(),
                    pending: false,
                })
                .collect()
        });
        let author = me.get_value();
        state.pending.with(|pending| {
            rows.extend(pending.iter().map(|Pending { client_id, text }| Row {
                message: ChatMessage {
                    username: author.clone(),
                    message: text.clone(),
                    id: 0,
                    ts: String::new(),
                    client_id: Some(client_id.clone()),
                },
                pending: true,
            }))
        });
        rows
    };
    let older = move || {
        if state.loading.get() {
            view! { <li class="older">"Loading older messages…"</li> }.into_any()
        } else if state.more.get() {
            view! {
                <li class="older">
                    <button class="link" data-testid="load-older" on:click=move |_| {
                        if let Some(el) = list.get_untracked() {
                            height_before_load.set_value(Some(el.scroll_height()));
                        }
                        on_load_older.run(())
                    }>"Load older messages"</button>
                </li>
            }
            .into_any()
        } else if messages.with(|m| !m.is_empty()) {
            view! { <li class="older" data-testid="beginning">"This is the beginning of the room."</li> }
                .into_any()
        } else {
            ().into_any()
        }
    };

    view! {
        <ol class="messages" node_ref=list on:scroll=on_scroll aria-label="Messages" aria-live="polite">
            {older}
            {move || {
                (messages.with(|m| m.is_empty()) && state.pending.with(|p| p.is_empty()))
                    .then(|| view! { <li class="empty">"No messages yet. Say hello!"</li> })
            }}
            // Stored messages, then the ones still on their way, in one keyed
            // list (one <For> costs the WASM less than two).
            <For
                each=rows
                key=|row| row.key()
                children=move |row| {
                    let own = row.pending || me.with_value(|me| *me == row.message.username);
                    view! { <MessageRow row own/> }
                }
            />
        </ol>
    }
}

/// One row of the list: a stored message, or one typed here and not yet
/// confirmed (its `id` is 0 and its `client_id` is set).
#[derive(Clone)]
struct Row {
    message: ChatMessage,
    pending: bool,
}

impl Row {
    fn key(&self) -> (u64, Option<String>) {
        if self.pending {
            (u64::MAX, self.message.client_id.clone())
        } else {
            (self.message.id, None)
        }
    }
}

#[component]
fn MessageRow(row: Row, own: bool) -> impl IntoView {
    let Row { message, pending } = row;
    let time = if pending {
        "Sending…".to_string()
    } else {
        local_time(&message.ts)
    };
    view! {
        <li class="message" class:own=own class:pending=pending
            data-testid=if pending { "pending" } else { "message" } data-id=message.id>
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

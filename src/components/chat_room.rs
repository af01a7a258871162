//! One room's chat screen: owns the connection, keeps it alive, and lays
//! out the parts.
//!
//! Reconnecting is automatic: after any drop that was not a refusal, the
//! next attempt comes after an exponential, jittered wait (shown, with a
//! "Reconnect now"), and resumes from the newest message this page has, so
//! the server sends exactly what was missed. Messages typed meanwhile wait
//! in the outbox with their client ids and go out once connected; the
//! server stores each client id once, so a resend never duplicates.

use std::time::Duration;

use leptos::prelude::*;

use super::{ConnectionStatus, MessageInput, MessageList, RoomList, TypingIndicator, UserList};
use crate::{
    client::{ChatState, Connection, Pending, Status, backoff, new_client_id},
    protocol::{ClientEvent, DELIVERY_PAUSED},
};

/// After "Delivery is paused", the outbox is sent again this much later
/// (and again after each such refusal), so it goes out once delivery is
/// back without waiting for a reconnect.
const PAUSED_RETRY: Duration = Duration::from_secs(2);

/// Banter's client sends `typing` at most this often while the user types.
const TYPING_EVERY_MS: f64 = 2_000.0;

#[component]
pub(crate) fn ChatRoom(
    name: String,
    room: String,
    /// Leave the chat; carries the reason when the server refused the name.
    #[prop(into)]
    on_leave: Callback<Option<String>>,
    /// Go to another room.
    #[prop(into)]
    on_switch: Callback<String>,
) -> impl IntoView {
    let state = ChatState::new();
    // The socket is a browser object: thread-local storage.
    let connection = StoredValue::new_local(None::<Connection>);
    let attempt = RwSignal::new(0u32);
    let failures = StoredValue::new(0u32);
    let retry = StoredValue::new_local(None::<TimeoutHandle>);

    let (username, room_name) = (name.clone(), room.clone());
    Effect::new(move |_| {
        attempt.track();
        let since = state.newest_id();
        connection.update_value(|current| {
            if let Some(old) = current.take() {
                old.close();
            }
            match Connection::open(&username, &room_name, since, state) {
                Ok(conn) => *current = Some(conn),
                Err(reason) => state.status.set(Status::Closed { code: 0, reason }),
            }
        });
    });
    let send_event = move |event: &ClientEvent| {
        connection.with_value(|conn| conn.as_ref().is_some_and(|conn| conn.send(event)))
    };
    let reconnect_now = move || {
        if let Some(timer) = retry.try_update_value(|t| t.take()).flatten() {
            timer.clear();
        }
        attempt.update(|n| *n += 1);
    };
    Effect::new(move |_| match state.status.get() {
        Status::Connected => {
            failures.set_value(0);
            // The outbox, in the order typed. Anything the server already
            // stored is dropped there by its client id.
            for Pending { client_id, text } in state.pending.get_untracked() {
                send_event(&ClientEvent::SendMessage {
                    message: text,
                    client_id: Some(client_id),
                });
            }
        }
        status @ Status::Closed { .. } if status.is_refusal() => {
            if let Status::Closed { reason, .. } = status {
                on_leave.run(Some(reason));
            }
        }
        Status::Closed { reason, .. } => {
            let failed = failures.get_value();
            failures.set_value(failed.saturating_add(1));
            let wait = backoff::delay_ms(failed, js_sys::Math::random());
            state.status.set(Status::Waiting { reason });
            let timer = set_timeout_with_handle(
                move || {
                    retry.try_set_value(None);
                    attempt.try_update(|n| *n += 1);
                },
                Duration::from_millis(wait as u64),
            )
            .ok();
            retry.set_value(timer);
        }
        Status::Connecting | Status::Waiting { .. } => {}
    });
    // Delivery paused (a cluster's Redis is unreachable): the outbox is
    // kept, and sent again a moment later; the server drops what it already
    // has by client id.
    let retry_scheduled = StoredValue::new(false);
    Effect::new(move |_| {
        let paused = state
            .notice
            .with(|n| n.as_deref().is_some_and(|n| n.starts_with(DELIVERY_PAUSED)));
        if paused && !retry_scheduled.get_value() {
            retry_scheduled.set_value(true);
            set_timeout(
                move || {
                    retry_scheduled.try_set_value(false);
                    // Shown again by the next refusal if still paused.
                    state.notice.try_set(None);
                    if state.status.get_untracked() == Status::Connected {
                        for Pending { client_id, text } in state.pending.get_untracked() {
                            send_event(&ClientEvent::SendMessage {
                                message: text,
                                client_id: Some(client_id),
                            });
                        }
                    }
                },
                PAUSED_RETRY,
            );
        }
    });
    // Typing indicators fade out on their own.
    if let Ok(ticker) = set_interval_with_handle(
        move || state.expire_typing(js_sys::Date::now()),
        Duration::from_secs(1),
    ) {
        on_cleanup(move || ticker.clear());
    }
    on_cleanup(move || {
        if let Some(timer) = retry.try_update_value(|t| t.take()).flatten() {
            timer.clear();
        }
        connection.try_update_value(|current| {
            if let Some(conn) = current.take() {
                conn.close();
            }
        });
    });

    let send = move |text: String| {
        state.notice.set(None);
        let pending = Pending {
            client_id: new_client_id(),
            text,
        };
        state.pending.update(|all| all.push(pending.clone()));
        if state.status.get_untracked() == Status::Connected {
            send_event(&ClientEvent::SendMessage {
                message: pending.text,
                client_id: Some(pending.client_id),
            });
        }
        true
    };
    let last_typing = StoredValue::new(f64::NEG_INFINITY);
    let typing = move |_| {
        let now = js_sys::Date::now();
        if now - last_typing.get_value() >= TYPING_EVERY_MS
            && state.status.get_untracked() == Status::Connected
        {
            last_typing.set_value(now);
            send_event(&ClientEvent::Typing);
        }
    };
    let load_older = move |_| {
        if state.loading.get_untracked() {
            return;
        }
        let Some(before) = state
            .messages
            .with_untracked(|all| all.first().map(|m| m.id))
        else {
            return;
        };
        if send_event(&ClientEvent::LoadHistory { before }) {
            state.loading.set(true);
        }
    };

    view! {
        <div class="chat">
            <header class="topbar">
                <span class="brand">"Banter"</span>
                <h1 class="room-title" data-testid="room-title">"#" {room.clone()}</h1>
                <ConnectionStatus status=state.status on_reconnect=move |_| reconnect_now()/>
                <span class="whoami">"as " <strong data-testid="whoami">{name.clone()}</strong></span>
                <button class="leave" on:click=move |_| on_leave.run(None)>"Leave"</button>
            </header>
            <div class="chat-body">
                <RoomList current=room.clone() here=state.users on_switch/>
                <div class="conversation">
                    <MessageList state me=name.clone() on_load_older=load_older/>
                    <TypingIndicator typing=state.typing me=name.clone()/>
                </div>
                <UserList users=state.users me=name.clone()/>
            </div>
            <p class="notice" role="alert" data-testid="notice">{move || state.notice.get()}</p>
            <MessageInput on_send=send on_typing=typing status=state.status/>
        </div>
    }
}

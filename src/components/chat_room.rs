//! One room's chat screen: runs the connection and lays out the parts.
//!
//! What to do about the connection is the [`Supervisor`]'s decision, shared
//! with the terminal client: this component opens the socket it asks for,
//! feeds it what the socket says, sends what it returns, keeps its one
//! timer, and shows its state (the link in the top bar, the outbox as
//! "sending…"). So a drop is retried after an exponential, jittered wait
//! (shown, with a "Reconnect now") and resumes from the newest message
//! here; messages typed meanwhile wait in the outbox and go out once
//! connected, never twice; a refusal of the name sends the page back to
//! the join form with the reason.

use std::time::Duration;

use leptos::prelude::*;

use super::{ConnectionStatus, MessageInput, MessageList, RoomList, TypingIndicator, UserList};
use crate::{
    client::{ChatState, Connection, new_client_id},
    protocol::{ClientEvent, ServerEvent},
    supervisor::{Due, Link, Supervisor},
};

/// What the browser reports when a socket drops without a close frame.
const ABNORMAL_CLOSURE: u16 = 1006;

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
    let supervisor = StoredValue::new(Supervisor::default());
    // The socket and the timer are browser objects: thread-local storage.
    let connection = StoredValue::new_local(None::<Connection>);
    let timer = StoredValue::new_local(None::<TimeoutHandle>);
    let attempt = RwSignal::new(0u32);

    let send_event = move |event: &ClientEvent| {
        connection.with_value(|conn| conn.as_ref().is_some_and(|conn| conn.send(event)))
    };
    // The supervisor's state, on screen.
    let show = move || {
        supervisor.with_value(|s| {
            if state.status.with_untracked(|link| link != s.link()) {
                state.status.try_set(s.link().clone());
            }
            if state.pending.with_untracked(|p| p != s.outbox()) {
                state.pending.try_set(s.outbox().to_vec());
            }
        })
    };
    // One timer, at the supervisor's next deadline, set again whenever
    // `wake` changes: after each step, and after it fires (a browser may
    // fire it a moment before the deadline, by the supervisor's clock).
    let wake = RwSignal::new(0u32);
    let arm = move || {
        wake.try_update(|n| *n = n.wrapping_add(1));
    };
    Effect::new(move |_| {
        wake.track();
        if let Some(old) = timer.try_update_value(|t| t.take()).flatten() {
            old.clear();
        }
        let Some(Some(at)) = supervisor.try_with_value(|s| s.deadline()) else {
            return;
        };
        let wait = (at - js_sys::Date::now()).max(0.0).ceil();
        let fire = move || {
            timer.try_set_value(None);
            match supervisor.try_update_value(|s| s.poll(js_sys::Date::now())) {
                Some(Due::Reconnect) => {
                    attempt.try_update(|n| *n += 1);
                }
                Some(Due::Resend(events)) => {
                    // Shown again by the next refusal if still paused.
                    state.notice.try_set(None);
                    for event in &events {
                        send_event(event);
                    }
                }
                _ => {}
            }
            arm();
        };
        let handle = set_timeout_with_handle(fire, Duration::from_millis(wait as u64)).ok();
        timer.set_value(handle);
    });
    let closed = move |code: u16, reason: String| {
        supervisor.try_update_value(|s| {
            s.closed(code, reason, js_sys::Date::now(), js_sys::Math::random())
        });
        show();
        arm();
    };

    let (username, room_name) = (name.clone(), room.clone());
    Effect::new(move |_| {
        attempt.track();
        let since = supervisor.try_update_value(|s| s.connecting()).flatten();
        show();
        let on_event = move |event: ServerEvent| {
            let now = js_sys::Date::now();
            let Some(sends) = supervisor.try_update_value(|s| s.received(&event, now)) else {
                return;
            };
            state.apply(event, now);
            for event in &sends {
                send_event(event);
            }
            show();
            arm();
        };
        let opened = Connection::open(&username, &room_name, since, on_event, closed);
        let opened = match opened {
            Ok(conn) => Some(conn),
            Err(reason) => {
                closed(ABNORMAL_CLOSURE, reason);
                None
            }
        };
        connection.update_value(|current| {
            if let Some(old) = std::mem::replace(current, opened) {
                old.close();
            }
        });
    });
    Effect::new(move |_| {
        if let Link::Refused { reason } = state.status.get() {
            on_leave.run(Some(reason));
        }
    });
    let reconnect_now = move || {
        supervisor.update_value(|s| s.retry_now());
        if supervisor.try_update_value(|s| s.poll(js_sys::Date::now())) == Some(Due::Reconnect) {
            attempt.update(|n| *n += 1);
        }
    };
    // Typing indicators fade out on their own.
    if let Ok(ticker) = set_interval_with_handle(
        move || state.expire_typing(js_sys::Date::now()),
        Duration::from_secs(1),
    ) {
        on_cleanup(move || ticker.clear());
    }
    on_cleanup(move || {
        supervisor.try_update_value(|s| s.close());
        if let Some(old) = timer.try_update_value(|t| t.take()).flatten() {
            old.clear();
        }
        connection.try_update_value(|current| {
            if let Some(conn) = current.take() {
                conn.close();
            }
        });
    });

    let send = move |text: String| {
        state.notice.set(None);
        if let Some(event) = supervisor
            .try_update_value(|s| s.send(new_client_id(), text))
            .flatten()
        {
            send_event(&event);
        }
        show();
        true
    };
    let typing = move |_| {
        if let Some(event) = supervisor
            .try_update_value(|s| s.typing(js_sys::Date::now()))
            .flatten()
        {
            send_event(&event);
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

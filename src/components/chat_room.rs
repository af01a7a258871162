//! The chat screen: owns the connection and lays out the parts.

use leptos::prelude::*;

use super::{ConnectionStatus, MessageInput, MessageList, UserList};
use crate::{
    client::{ChatState, Connection, Status},
    protocol::ClientEvent,
};

#[component]
pub fn ChatRoom(
    name: String,
    /// Leave the chat; carries the reason when the server refused the name.
    #[prop(into)]
    on_leave: Callback<Option<String>>,
) -> impl IntoView {
    let state = ChatState::new();
    // The socket is a browser object: thread-local storage.
    let connection = StoredValue::new_local(None::<Connection>);
    let attempt = RwSignal::new(0u32);

    let username = name.clone();
    Effect::new(move |_| {
        attempt.track();
        connection.update_value(|current| {
            if let Some(old) = current.take() {
                old.close();
            }
            match Connection::open(&username, state) {
                Ok(conn) => *current = Some(conn),
                Err(reason) => state.status.set(Status::Closed { code: 0, reason }),
            }
        });
    });
    on_cleanup(move || {
        connection.try_update_value(|current| {
            if let Some(conn) = current.take() {
                conn.close();
            }
        });
    });
    // A refused name goes back to the join screen with the server's reason.
    Effect::new(move |_| {
        let status = state.status.get();
        if status.is_refusal()
            && let Status::Closed { reason, .. } = status
        {
            on_leave.run(Some(reason));
        }
    });

    let send = move |text: String| {
        state.notice.set(None);
        connection.with_value(|conn| {
            conn.as_ref()
                .is_some_and(|conn| conn.send(&ClientEvent::SendMessage { message: text }))
        })
    };
    let connected = Signal::derive(move || state.status.get() == Status::Connected);

    view! {
        <div class="chat">
            <header class="topbar">
                <span class="brand">"Banter"</span>
                <ConnectionStatus status=state.status on_reconnect=move |_| attempt.update(|n| *n += 1)/>
                <span class="whoami">"as " <strong data-testid="whoami">{name.clone()}</strong></span>
                <button class="leave" on:click=move |_| on_leave.run(None)>"Leave"</button>
            </header>
            <div class="chat-body">
                <MessageList messages=state.messages me=name.clone()/>
                <UserList users=state.users me=name.clone()/>
            </div>
            <p class="notice" role="alert" data-testid="notice">{move || state.notice.get()}</p>
            <MessageInput on_send=send enabled=connected/>
        </div>
    }
}

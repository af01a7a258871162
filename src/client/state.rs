//! The chat as the page sees it: signals, updated from server events.

use std::collections::BTreeSet;

use leptos::prelude::*;

use crate::protocol::{ChatMessage, ServerEvent, close_code};

/// Where the connection stands, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Connecting,
    Connected,
    /// The socket closed; `reason` is the server's words when it gave any.
    Closed {
        code: u16,
        reason: String,
    },
}

impl Status {
    /// The server refused this user (taken or invalid name): reconnecting
    /// with the same name would be refused again.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Status::Closed { code, .. } if *code == close_code::POLICY)
    }
}

/// Reactive chat state. `Copy` (signals are handles), so every component
/// and callback can hold it.
#[derive(Debug, Clone, Copy)]
pub struct ChatState {
    /// Every message received since joining, oldest first.
    pub messages: RwSignal<Vec<ChatMessage>>,
    /// Who is online.
    pub users: RwSignal<BTreeSet<String>>,
    pub status: RwSignal<Status>,
    /// The server's last `error` event, shown until the next send.
    pub notice: RwSignal<Option<String>>,
}

impl Default for ChatState {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatState {
    pub fn new() -> Self {
        ChatState {
            messages: RwSignal::new(Vec::new()),
            users: RwSignal::new(BTreeSet::new()),
            status: RwSignal::new(Status::Connecting),
            notice: RwSignal::new(None),
        }
    }

    /// Applies one server event. `try_` updates: a late event arriving after
    /// the page left the chat must not touch disposed signals.
    pub fn apply(&self, event: ServerEvent) {
        match event {
            ServerEvent::SendMessage(message) => {
                self.messages.try_update(|all| all.push(message));
            }
            ServerEvent::UpdateUsers { usernames } => {
                self.users
                    .try_set(usernames.iter().map(|n| n.to_string()).collect());
            }
            ServerEvent::UserJoined { usernames } => {
                self.users
                    .try_update(|users| users.extend(usernames.iter().map(|n| n.to_string())));
            }
            ServerEvent::UserLeft { usernames } => {
                self.users.try_update(|users| {
                    for name in &usernames {
                        users.remove(&**name);
                    }
                });
            }
            ServerEvent::Error { message } => {
                self.notice.try_set(Some(message));
            }
        }
    }
}

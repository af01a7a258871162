//! The chat as the page sees it: signals, updated from server events.

use std::collections::BTreeSet;

use leptos::prelude::*;

use crate::{
    protocol::{ChatMessage, ServerEvent},
    supervisor::{Link, Pending},
};

/// How long "alice is typing…" stays up after her last `typing` event.
pub(crate) const TYPING_SHOWN_MS: f64 = 5_000.0;

/// Reactive chat state for one room. `Copy` (signals are handles), so every
/// component and callback can hold it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChatState {
    /// The messages this page has, oldest first, each id once.
    pub(crate) messages: RwSignal<Vec<ChatMessage>>,
    /// Older messages exist on the server than the first in `messages`.
    pub(crate) more: RwSignal<bool>,
    /// A `load-history` is on its way.
    pub(crate) loading: RwSignal<bool>,
    /// Messages typed here and not yet confirmed, in the order typed: the
    /// supervisor's outbox, as shown ("sending…").
    pub(crate) pending: RwSignal<Vec<Pending>>,
    /// Who is online.
    pub(crate) users: RwSignal<BTreeSet<String>>,
    /// Who is typing, with when to stop showing it (ms since the epoch).
    pub(crate) typing: RwSignal<Vec<(String, f64)>>,
    /// Where the connection stands (the supervisor's, as shown).
    pub(crate) status: RwSignal<Link>,
    /// The server's last `error` event, shown until the next send.
    pub(crate) notice: RwSignal<Option<String>>,
}

impl Default for ChatState {
    fn default() -> Self {
        Self::new()
    }
}

impl ChatState {
    pub(crate) fn new() -> Self {
        ChatState {
            messages: RwSignal::new(Vec::new()),
            more: RwSignal::new(false),
            loading: RwSignal::new(false),
            pending: RwSignal::new(Vec::new()),
            users: RwSignal::new(BTreeSet::new()),
            typing: RwSignal::new(Vec::new()),
            status: RwSignal::new(Link::Connecting),
            notice: RwSignal::new(None),
        }
    }

    /// Applies one server event. `try_` updates: a late event arriving after
    /// the page left the room must not touch disposed signals. `now` is the
    /// time in ms since the epoch (a parameter so tests can run natively).
    pub(crate) fn apply(&self, event: ServerEvent, now: f64) {
        match event {
            ServerEvent::SendMessage(message) => {
                let author = message.username.clone();
                self.messages.try_update(|all| insert(all, message));
                self.typing
                    .try_update(|typing| typing.retain(|(name, _)| *name != author));
            }
            ServerEvent::History { messages, more } => {
                self.messages.try_update(|all| {
                    if merge_page(all, messages) {
                        self.more.try_set(more);
                    }
                });
                self.loading.try_set(false);
            }
            ServerEvent::Typing { username } => {
                let until = now + TYPING_SHOWN_MS;
                self.typing.try_update(|typing| {
                    match typing.iter_mut().find(|(name, _)| **name == *username) {
                        Some(entry) => entry.1 = until,
                        None => typing.push((username.to_string(), until)),
                    }
                });
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
                self.typing.try_update(|typing| {
                    typing.retain(|(name, _)| !usernames.iter().any(|n| **n == **name))
                });
            }
            ServerEvent::Error { message } => {
                self.loading.try_set(false);
                self.notice.try_set(Some(message));
            }
        }
    }

    /// Drops typing indicators whose time is up.
    pub(crate) fn expire_typing(&self, now: f64) {
        if self
            .typing
            .try_with_untracked(|t| t.iter().any(|(_, until)| *until <= now))
            == Some(true)
        {
            self.typing
                .try_update(|typing| typing.retain(|(_, until)| *until > now));
        }
    }
}

/// Inserts a message in id order, unless it is already there. Live
/// messages arrive in order, so this is nearly always a push.
fn insert(all: &mut Vec<ChatMessage>, message: ChatMessage) {
    match all.last() {
        None => all.push(message),
        Some(last) if last.id < message.id => all.push(message),
        _ => {
            if let Err(at) = all.binary_search_by_key(&message.id, |m| m.id) {
                all.insert(at, message);
            }
        }
    }
}

/// Merges a `history` page. A page of older messages (what `load-history`
/// returns) goes in front; a page that reaches past what the page has (on
/// joining, or after a gap too long to replay) replaces the list, because
/// the messages between would be missing. Returns whether the page now
/// starts with this page's first message (so its `more` applies).
fn merge_page(all: &mut Vec<ChatMessage>, page: Vec<ChatMessage>) -> bool {
    let Some(page_newest) = page.last().map(|m| m.id) else {
        // An empty page: nothing older (or nothing at all).
        return true;
    };
    let newest = all.last().map_or(0, |m| m.id);
    let oldest = all.first().map_or(u64::MAX, |m| m.id);
    if page_newest < oldest {
        let mut merged = page;
        merged.append(all);
        *all = merged;
        true
    } else if page_newest > newest {
        *all = page;
        true
    } else {
        // Overlaps what is here (a late reply): add what is missing.
        for message in page {
            insert(all, message);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::message as msg;

    fn ids(all: &[ChatMessage]) -> Vec<u64> {
        all.iter().map(|m| m.id).collect()
    }

    #[test]
    fn live_messages_are_kept_in_order_once() {
        let mut all = vec![msg(1), msg(3)];
        insert(&mut all, msg(5));
        insert(&mut all, msg(2));
        insert(&mut all, msg(3));
        assert_eq!(ids(&all), [1, 2, 3, 5]);
    }

    #[test]
    fn older_pages_go_in_front_and_newer_pages_replace() {
        let mut all = vec![msg(10), msg(11)];
        assert!(merge_page(&mut all, vec![msg(4), msg(7)]));
        assert_eq!(ids(&all), [4, 7, 10, 11]);
        assert!(merge_page(&mut all, vec![msg(50), msg(51)]));
        assert_eq!(ids(&all), [50, 51], "a page past a gap replaces");
        assert!(!merge_page(&mut all, vec![msg(49), msg(51)]));
        assert_eq!(ids(&all), [49, 50, 51]);
    }
}

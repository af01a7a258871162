//! A room's latest page of messages, kept in memory.
//!
//! Why: every joiner is sent the room's newest [`HISTORY_PAGE`] messages.
//! Reading them from storage for each joiner would make a join burst (a
//! server restart, a class logging in at once) a burst of queries; instead
//! the first joiner loads the page, every delivery keeps it up, and the
//! `history` frame is built once per change and shared by every joiner.

use std::collections::VecDeque;

use super::frame::{Frame, encode};
use crate::protocol::{ChatMessage, HISTORY_PAGE, ServerEvent};

/// The latest messages, kept so a join burst reads no storage.
#[derive(Default)]
pub(crate) struct Latest {
    /// At most [`HISTORY_PAGE`] messages, oldest first.
    messages: VecDeque<ChatMessage>,
    /// Whether `messages` is known to hold the room's newest messages (it
    /// was loaded from storage, then kept up by every delivery).
    primed: bool,
    /// Older messages exist than the first in `messages`.
    more: bool,
    /// The `history` frame for `messages`, built once per change.
    frame: Option<Frame>,
}

impl Latest {
    pub(crate) fn push(&mut self, message: ChatMessage) {
        // Already here: the page was read from storage after the message was
        // stored but before it was delivered (cluster mode reads the log).
        if message.id <= self.newest() {
            return;
        }
        if self.messages.len() == HISTORY_PAGE {
            self.messages.pop_front();
            self.more = true;
        }
        self.messages.push_back(message);
        self.frame = None;
    }

    /// Installs the page read from storage, merged with whatever was
    /// delivered meanwhile (the first joiner reads storage while others may
    /// already be chatting), and returns it like [`Latest::page`]. Only the
    /// first call counts: later ones would overwrite newer deliveries.
    pub(crate) fn prime(&mut self, stored: Vec<ChatMessage>, more: bool) -> (Frame, u64) {
        if !self.primed {
            let delivered = std::mem::take(&mut self.messages);
            let mut merged: Vec<ChatMessage> = stored;
            let newest_stored = merged.last().map_or(0, |m| m.id);
            merged.extend(delivered.into_iter().filter(|m| m.id > newest_stored));
            let skip = merged.len().saturating_sub(HISTORY_PAGE);
            self.more = more || skip > 0;
            self.messages = merged.into_iter().skip(skip).collect();
            self.primed = true;
            self.frame = None;
        }
        self.frame()
    }

    /// Whether the page has been loaded from storage.
    pub(crate) fn primed(&self) -> bool {
        self.primed
    }

    /// The newest id in the page (0 if empty).
    pub(crate) fn newest(&self) -> u64 {
        self.messages.back().map_or(0, |m| m.id)
    }

    /// The page as a `history` frame and its newest id, once primed.
    pub(crate) fn page(&mut self) -> Option<(Frame, u64)> {
        self.primed.then(|| self.frame())
    }

    fn frame(&mut self) -> (Frame, u64) {
        let newest = self.newest();
        let frame = self.frame.get_or_insert_with(|| {
            encode(&ServerEvent::History {
                messages: self.messages.iter().cloned().collect(),
                more: self.more,
            })
        });
        (frame.clone(), newest)
    }
}

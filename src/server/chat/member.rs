//! Who is in a room, as the room sees them: a name, how they hear of joins
//! and leaves, and where their events go.
//!
//! A room hands every event to each member's [`Recipient`] itself, in one
//! loop under its lock, in the order the events happen: no channel, no
//! task woken per member. What a recipient does with an event is the
//! connection's business (`server::edge::connection`): written straight
//! to its socket while it has nothing queued, queued for its own writer
//! when the socket would block. So a message costs about one send per
//! member — put on the room's round ([`Recipient::offer_in`]) and handed
//! to the kernel with the rest of the room's (`server::send_ring`) — and a
//! slow member holds up nobody but itself: an offer never blocks.

use std::sync::Arc;

use super::frame::{Outbound, PresenceStyle};
use crate::server::send_ring::Round;

/// Where a member's events go. Called under the room's lock, so it must
/// never block nor call back into the room.
pub(crate) trait Recipient: Send + Sync {
    /// One event for this member, in the room's order. Returns how many
    /// frames went out at once (0 or 1), which the room counts for the
    /// whole loop in one go rather than once per member.
    fn offer(&self, event: &Outbound) -> u64;

    /// One event as part of a fan-out `round`: a recipient that writes to
    /// a socket queues its send there, so that the whole room's sends go
    /// to the kernel together (`server::send_ring`). Returns how many
    /// frames went out at once; those sent on the round are counted when
    /// it ends.
    fn offer_in<'a>(&'a self, event: &'a Outbound, round: &mut Round<'_, 'a>) -> u64 {
        let _ = round;
        self.offer(event)
    }

    /// Several events at once, in order (a storage batch): a recipient
    /// that can write them together should. Returns how many frames went
    /// out at once.
    fn offer_all(&self, events: &[Outbound]) -> u64 {
        events.iter().map(|event| self.offer(event)).sum()
    }

    /// This member is next in the loop: a recipient whose state lives
    /// elsewhere in memory may start fetching it now, so that it is in
    /// cache by the time its offer comes (see the room's fan-out).
    fn prefetch(&self) {}
}

/// Someone entering a room.
#[derive(Clone)]
pub(crate) struct Joiner {
    pub(crate) name: Arc<str>,
    pub(crate) style: PresenceStyle,
    pub(crate) recipient: Arc<dyn Recipient>,
}

/// A member's place in its room's list, for leaving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Place(pub(crate) usize);

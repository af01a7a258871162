//! A connected user's place in a room, and what it is sent on joining.

use std::sync::Arc;

use super::Hub;
use crate::{
    protocol::ServerEvent,
    server::{
        chat::{
            frame::{Frame, PresenceStyle, encode},
            member::Place,
            room::Room,
        },
        cluster::Seat,
    },
};

/// Names per frame when a delta client is sent the user list on joining.
/// One frame of 10,000 names would leave every connection's write buffer
/// at ~150 KB for good (buffers keep their capacity); chunks keep it small.
const SNAPSHOT_CHUNK: usize = crate::protocol::USER_LIST_CHUNK;

/// A connected user's place in a room. Dropping it removes the user.
pub(crate) struct Membership {
    pub(super) hub: Arc<Hub>,
    pub(super) room: Arc<Room>,
    pub(super) name: Arc<str>,
    pub(super) style: PresenceStyle,
    /// Its place in the room's member list.
    pub(super) place: Place,
    /// The name's claim in the cluster (cluster mode only).
    pub(super) seat: Option<Seat>,
    /// What to send first, in order: the user list, then history.
    pub(crate) snapshot: Vec<Frame>,
    /// The newest message id in `snapshot`: messages handed to the
    /// recipient up to it were already sent from storage and are skipped.
    pub(crate) seen_through: u64,
}

impl Membership {
    /// The username as joined (trimmed).
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.name
    }

    pub(crate) fn room(&self) -> &Arc<Room> {
        &self.room
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(
            &self.room,
            &self.name,
            self.style,
            self.place,
            self.seat.take(),
        );
    }
}

/// The user list for a joiner. Tutorial clients understand only one whole
/// `update-users`; delta clients get the list in chunks (`update-users` with
/// the first, `user-joined` with the rest), which they merge the same way.
pub(super) fn snapshot_frames(names: Vec<Arc<str>>, style: PresenceStyle) -> Vec<Frame> {
    if style == PresenceStyle::List || names.len() <= SNAPSHOT_CHUNK {
        return vec![encode(&ServerEvent::UpdateUsers { usernames: names })];
    }
    names
        .chunks(SNAPSHOT_CHUNK)
        .enumerate()
        .map(|(i, chunk)| {
            let usernames = chunk.to_vec();
            encode(&if i == 0 {
                ServerEvent::UpdateUsers { usernames }
            } else {
                ServerEvent::UserJoined { usernames }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_joiner_gets_a_long_list_in_chunks_that_add_up() {
        let names: Vec<Arc<str>> = (0..601).map(|i| Arc::from(format!("u{i:03}"))).collect();
        let frames = snapshot_frames(names.clone(), PresenceStyle::Delta);
        assert_eq!(frames.len(), 601usize.div_ceil(SNAPSHOT_CHUNK));
        let mut seen = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let usernames = match (i, ServerEvent::from_json(frame.as_str()).unwrap()) {
                (0, ServerEvent::UpdateUsers { usernames }) => usernames,
                (i, ServerEvent::UserJoined { usernames }) if i > 0 => usernames,
                (i, other) => panic!("frame {i}: {other:?}"),
            };
            assert!(usernames.len() <= SNAPSHOT_CHUNK);
            seen.extend(usernames);
        }
        assert_eq!(seen, names);
        // A tutorial client still gets one whole list.
        assert_eq!(snapshot_frames(names, PresenceStyle::List).len(), 1);
    }
}

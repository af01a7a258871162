//! Who is in the chat: the names taken, and the list a joiner's snapshot is
//! built from.
//!
//! The list is kept as bytes ready to go in a frame (everyone's JSON-encoded
//! name, comma-separated), not as values to serialize, since a burst of joins
//! reads it once per turn. A join appends to it; a leave only marks it stale,
//! and it is rebuilt from the open connections when next needed: leaving
//! costs nothing, and a turn with many leaves rebuilds it at most once.

use std::collections::HashSet;

use crate::conn::{Conn, State};

pub(crate) struct Roster {
    names: HashSet<String>,
    /// Everyone's JSON-encoded names, comma-separated, in join order;
    /// rebuilt after a leave, when next needed.
    list: Vec<u8>,
    list_stale: bool,
}

impl Roster {
    pub(crate) fn new() -> Roster {
        Roster {
            names: HashSet::new(),
            list: Vec::new(),
            list_stale: false,
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Takes `name`, free (see `contains`), `json` being it as a JSON string.
    pub(crate) fn join(&mut self, name: String, json: &str) {
        if !self.list_stale {
            if !self.list.is_empty() {
                self.list.push(b',');
            }
            self.list.extend_from_slice(json.as_bytes());
        }
        self.names.insert(name);
    }

    /// Gives `name` up.
    pub(crate) fn leave(&mut self, name: &str) {
        self.names.remove(name);
        self.list_stale = true;
    }

    /// The list, rebuilt from the joined connections in `conns` if a leave
    /// made it stale.
    pub(crate) fn list<'a>(&mut self, conns: impl Iterator<Item = &'a Conn>) -> &[u8] {
        if self.list_stale {
            self.list.clear();
            for conn in conns {
                if let (Some((_, json)), State::Joining | State::Open) = (&conn.name, &conn.state) {
                    if !self.list.is_empty() {
                        self.list.push(b',');
                    }
                    self.list.extend_from_slice(json.as_bytes());
                }
            }
            self.list_stale = false;
        }
        &self.list
    }
}

//! The chat as one process holds it: its rooms and their members.
//!
//! The same in every mode. Whatever orders and keeps messages (the storage
//! thread in the embedded default, a shared log in a cluster) hands each
//! one to its room ([`rooms::Rooms::deliver_all`]); the room serialises it
//! once and fans it out to this process's sockets.
//!
//! From the bottom up, each module importing only those before it:
//! - [`frame`]: a serialised event, and who it is for.
//! - [`presence`]: joins and leaves, logged and sent in batches.
//! - [`name_key`]: when two usernames are one name.
//! - [`latest`]: a room's latest page of messages, kept in memory.
//! - [`member`]: a room's member as the room sees it: where its events go.
//! - [`room`]: one room: members, presence log, latest page, fan-out.
//! - [`rooms`]: every room with someone in it.

pub(crate) mod frame;
pub(crate) mod latest;
pub(crate) mod member;
pub(crate) mod name_key;
pub(crate) mod presence;
pub(crate) mod room;
pub(crate) mod rooms;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// These locks guard plain data that no code path leaves half-updated, so
/// a panic elsewhere (poisoning) is no reason to stop serving.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

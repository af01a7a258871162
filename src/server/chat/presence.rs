//! Presence coalescing: joins and leaves are logged as they happen and sent
//! at most once per interval.
//!
//! Why: the tutorial protocol sends the whole user list to everyone after
//! every join, so a burst of N joins costs O(N²) bytes — servers built that
//! way could not connect 5,000 clients in 25 s. Here a burst costs one list
//! (to tutorial clients) or a few small deltas (to Banter's clients) per
//! interval.
//!
//! Even one list per interval is O(N²) while a crowd joins: N recipients
//! of an N-name list, every interval, for as long as the joins last (10,000
//! tutorial clients joining were sent 76 GB of lists). So whole lists are
//! also paced by what they cost ([`ListPace`]): after a list of B bytes to
//! R clients, the next waits B × R / [`LIST_BYTES_PER_SECOND`]. A small
//! room is unaffected (1,000 names to 1,000 clients: 8 MB, an eighth of a
//! second); at 10,000 a list goes out about every 12 s while joins go on.
//! A joiner still gets the current list at once, in its join snapshot, and
//! the last list after the joins stop is exact.
//!
//! Deltas are an *ordered* log of set operations, cut into runs of
//! `user-joined` and `user-left`. Applying a prefix of the log twice leaves a
//! set as applying it once (each operation sets a name's membership
//! outright, so the last one for a name wins either way). That is what lets
//! a joiner take its snapshot in the middle of a batch and then apply the
//! whole batch.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use super::frame::{Frame, encode};
use crate::protocol::ServerEvent;

/// One membership change, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Joined(Arc<str>),
    Left(Arc<str>),
}

/// Changes since the last presence broadcast.
#[derive(Debug, Default)]
pub(crate) struct PresenceLog {
    changes: Vec<Change>,
}

impl PresenceLog {
    pub(crate) fn push(&mut self, change: Change) {
        self.changes.push(change);
    }

    /// Empties the log, returning what it held.
    pub(crate) fn take(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }
}

/// Whole-list bytes (list size × recipients) one room may send per second,
/// on average. A share a loopback socket path moves in well under a tenth
/// of a core, and far above what a room of a few hundred ever needs.
pub(crate) const LIST_BYTES_PER_SECOND: f64 = 64.0 * 1024.0 * 1024.0;

/// When a room's next whole list may go out. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct ListPace {
    /// Membership changed since the last list.
    stale: bool,
    not_before: Option<Instant>,
}

impl ListPace {
    pub(crate) fn changed(&mut self) {
        self.stale = true;
    }

    /// Whether a list is owed and its pace allows it now.
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.stale && self.not_before.is_none_or(|at| now >= at)
    }

    /// A list of `bytes` went to `recipients` at `now`.
    pub(crate) fn sent(&mut self, now: Instant, bytes: usize, recipients: usize) {
        self.stale = false;
        let cost = bytes as f64 * recipients as f64;
        self.not_before = Some(now + Duration::from_secs_f64(cost / LIST_BYTES_PER_SECOND));
    }
}

/// Cuts a change log into runs, one `user-joined` or `user-left` frame per
/// run, preserving order.
pub(crate) fn delta_frames(changes: &[Change]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut rest = changes;
    while let Some(first) = rest.first() {
        let joined = matches!(first, Change::Joined(_));
        let run_len = rest
            .iter()
            .take_while(|c| matches!(c, Change::Joined(_)) == joined)
            .count();
        let usernames = rest[..run_len]
            .iter()
            .map(|c| match c {
                Change::Joined(name) | Change::Left(name) => Arc::clone(name),
            })
            .collect();
        frames.push(encode(&if joined {
            ServerEvent::UserJoined { usernames }
        } else {
            ServerEvent::UserLeft { usernames }
        }));
        rest = &rest[run_len..];
    }
    frames
}

/// Calls `flush` (which sends every room's gathered changes) every
/// `interval` until shutdown.
pub(crate) async fn every(interval: Duration, shutdown: CancellationToken, flush: impl Fn()) {
    let mut ticks = tokio::time::interval(interval);
    // After a stall, send one batch rather than a catch-up burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn joined(n: &str) -> Change {
        Change::Joined(n.into())
    }
    fn left(n: &str) -> Change {
        Change::Left(n.into())
    }

    fn apply(set: &mut BTreeSet<String>, changes: &[Change]) {
        for c in changes {
            match c {
                Change::Joined(n) => set.insert(n.to_string()),
                Change::Left(n) => set.remove(&**n),
            };
        }
    }

    #[test]
    fn a_list_waits_for_what_the_last_one_cost() {
        let mut pace = ListPace::default();
        let start = Instant::now();
        assert!(!pace.is_due(start), "nothing changed");
        pace.changed();
        assert!(pace.is_due(start), "the first list goes at once");
        // 8 KB to 1,000 clients: 8 MB, an eighth of a second.
        pace.sent(start, 8 * 1024, 1000);
        pace.changed();
        assert!(!pace.is_due(start + Duration::from_millis(100)));
        assert!(pace.is_due(start + Duration::from_millis(130)));
        // 80 KB to 10,000 clients: about 12 s.
        pace.sent(start, 80 * 1024, 10_000);
        pace.changed();
        assert!(!pace.is_due(start + Duration::from_secs(11)));
        assert!(pace.is_due(start + Duration::from_secs(13)));
    }

    #[test]
    fn runs_keep_order() {
        let frames = delta_frames(&[joined("a"), joined("b"), left("a"), joined("a")]);
        let frames: Vec<_> = frames.iter().map(|f| f.as_str()).collect();
        assert_eq!(
            frames,
            [
                r#"{"event":"user-joined","usernames":["a","b"]}"#,
                r#"{"event":"user-left","usernames":["a"]}"#,
                r#"{"event":"user-joined","usernames":["a"]}"#,
            ]
        );
    }

    #[test]
    fn replaying_a_prefix_from_a_mid_batch_snapshot_converges() {
        let log = [joined("w"), joined("x"), left("w"), left("y"), joined("y")];
        let start: BTreeSet<String> = ["y".to_string()].into();
        for cut in 0..=log.len() {
            // Snapshot taken after `cut` changes, then the whole batch applied.
            let mut snapshot = start.clone();
            apply(&mut snapshot, &log[..cut]);
            apply(&mut snapshot, &log);
            let mut truth = start.clone();
            apply(&mut truth, &log);
            assert_eq!(snapshot, truth, "cut at {cut}");
        }
    }
}

//! The connection supervisor every Banter client shares: the page, the
//! terminal client and the help bot.
//!
//! It decides, and does nothing else: no socket, no timer, no clock. Its
//! driver (the page's `ChatRoom`, the native client's task) opens the
//! socket when told, feeds it what the socket says, sends what it returns,
//! and calls [`Supervisor::poll`] at [`Supervisor::deadline`]. Written once,
//! sans-I/O, so that the browser and the terminal reconnect, resume and
//! resend in exactly the same way, and so it can be tested without either.
//!
//! What it keeps:
//! - **Where the link stands** ([`Link`]): connecting, connected, retrying
//!   after a drop (when, and why), refused for good, or closed here.
//! - **The outbox**: messages typed and not yet echoed by the server, with
//!   their client ids. Sent when the link comes up, and again a moment
//!   after a refusal that says "not now" ("Delivery is paused", "Slow
//!   down"); the server stores each client id once, so a resend never
//!   duplicates.
//! - **The resume point**: the newest message id seen, sent as `since`.
//! - **The typing pace**: one `typing` per [`TYPING_EVERY_MS`].
//!
//! A refusal is told apart from a drop by *when* it comes, not by its code
//! alone: the server refuses a join (a taken or invalid name, a refused
//! token) with 1008 before sending anything, while a 1008 once joined (for
//! flooding) is a drop like any other, retried after a pause.

mod backoff;
mod pace;

pub(crate) use pace::Pace;

use crate::protocol::{ClientEvent, DELIVERY_PAUSED, SLOW_DOWN, ServerEvent, close_code};

/// A client sends `typing` at most this often while its user types.
pub(crate) const TYPING_EVERY_MS: f64 = 2_000.0;
/// A name refused as taken on *re*connecting may be this user's own old
/// socket, which the server keeps until its ping times out (30 + 10 s by
/// default): for this long after the first such refusal it is retried like
/// a drop, and only then taken as someone else's.
pub(crate) const OWN_GHOST_MS: f64 = 45_000.0;
/// After "Delivery is paused" or "Slow down", the outbox is sent again this
/// much later (and again after each such refusal), so it goes out once the
/// server takes it, without waiting for a reconnect.
pub(crate) const PAUSED_RETRY_MS: f64 = 2_000.0;

/// Where the connection stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Link {
    /// A socket is being opened; nothing has come from it yet.
    Connecting,
    /// The server has answered: this user is in the room.
    Connected,
    /// Dropped; the next attempt is due at `at_ms`. `reason`: the server's
    /// words, if it gave any.
    Retrying { reason: String, at_ms: f64 },
    /// The server refused this user (the name, the room, the token): the
    /// same again would be refused again, so it is not retried.
    Refused { reason: String },
    /// Closed here, on purpose.
    Closed,
}

/// A message typed here, not yet echoed back by the server (so not yet
/// stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) client_id: String,
    pub(crate) text: String,
}

/// What came due at [`Supervisor::poll`].
#[derive(Debug, PartialEq)]
pub(crate) enum Due {
    Nothing,
    /// Open a new socket (with [`Supervisor::connecting`]).
    Reconnect,
    /// Send these again (the outbox, after a pause in delivery).
    Resend(Vec<ClientEvent>),
}

/// One room's connection, as decided. See the module docs.
#[derive(Debug)]
pub(crate) struct Supervisor {
    link: Link,
    outbox: Vec<Pending>,
    newest: Option<u64>,
    /// Drops in a row without a successful join.
    failures: u32,
    last_typing_ms: f64,
    resend_at_ms: Option<f64>,
    /// This user has been in the room on an earlier socket.
    joined_before: bool,
    /// When a rejoin was first refused (see [`OWN_GHOST_MS`]).
    refused_since_ms: Option<f64>,
}

impl Default for Supervisor {
    fn default() -> Self {
        Supervisor {
            link: Link::Connecting,
            outbox: Vec::new(),
            newest: None,
            failures: 0,
            last_typing_ms: f64::NEG_INFINITY,
            resend_at_ms: None,
            joined_before: false,
            refused_since_ms: None,
        }
    }
}

impl Supervisor {
    pub(crate) fn link(&self) -> &Link {
        &self.link
    }

    /// Messages waiting for their echo, in the order typed.
    pub(crate) fn outbox(&self) -> &[Pending] {
        &self.outbox
    }

    /// A socket is being opened; returns the `since` to ask for.
    pub(crate) fn connecting(&mut self) -> Option<u64> {
        self.link = Link::Connecting;
        self.newest
    }

    /// One event from the server. Returns what to send now: the outbox, in
    /// the order typed, when this is the first event of a new socket.
    pub(crate) fn received(&mut self, event: &ServerEvent, now_ms: f64) -> Vec<ClientEvent> {
        match event {
            ServerEvent::SendMessage(message) => {
                self.seen(message.id);
                if let Some(id) = &message.client_id {
                    self.outbox.retain(|p| &p.client_id != id);
                }
            }
            ServerEvent::History { messages, .. } => {
                for message in messages {
                    self.seen(message.id);
                    if let Some(id) = &message.client_id {
                        self.outbox.retain(|p| &p.client_id != id);
                    }
                }
            }
            ServerEvent::Error { message }
                if (message.starts_with(DELIVERY_PAUSED) || message.starts_with(SLOW_DOWN))
                    && self.resend_at_ms.is_none() =>
            {
                self.resend_at_ms = Some(now_ms + PAUSED_RETRY_MS);
            }
            _ => {}
        }
        if self.link == Link::Connected {
            return Vec::new();
        }
        self.link = Link::Connected;
        self.failures = 0;
        self.joined_before = true;
        self.refused_since_ms = None;
        self.outbox_events()
    }

    /// The socket closed with `code` and `reason` (1006 and nothing when it
    /// just dropped). `random` in [0, 1) spreads the retries of many
    /// clients over time.
    pub(crate) fn closed(&mut self, code: u16, reason: String, now_ms: f64, random: f64) {
        let refused = matches!(self.link, Link::Connecting) && code == close_code::POLICY;
        let own_ghost = refused && self.joined_before && {
            let since = *self.refused_since_ms.get_or_insert(now_ms);
            now_ms - since < OWN_GHOST_MS
        };
        match self.link {
            Link::Closed | Link::Refused { .. } => {}
            Link::Connecting if refused && !own_ghost => self.link = Link::Refused { reason },
            _ => {
                let wait = backoff::delay_ms(self.failures, random);
                self.failures = self.failures.saturating_add(1);
                self.link = Link::Retrying {
                    reason,
                    at_ms: now_ms + wait,
                };
            }
        }
    }

    /// The user wants to try again at once.
    pub(crate) fn retry_now(&mut self) {
        if let Link::Retrying { at_ms, .. } = &mut self.link {
            *at_ms = f64::NEG_INFINITY;
        }
    }

    /// Closed here: nothing more is retried.
    pub(crate) fn close(&mut self) {
        self.link = Link::Closed;
    }

    /// The user sent a message: it waits in the outbox until echoed.
    /// Returns the event to send now, if connected.
    pub(crate) fn send(&mut self, client_id: String, text: String) -> Option<ClientEvent> {
        let event = (self.link == Link::Connected).then(|| ClientEvent::SendMessage {
            message: text.clone(),
            client_id: Some(client_id.clone()),
        });
        self.outbox.push(Pending { client_id, text });
        event
    }

    /// The user is typing: a `typing` event to send, at most one per
    /// [`TYPING_EVERY_MS`].
    pub(crate) fn typing(&mut self, now_ms: f64) -> Option<ClientEvent> {
        if self.link != Link::Connected || now_ms - self.last_typing_ms < TYPING_EVERY_MS {
            return None;
        }
        self.last_typing_ms = now_ms;
        Some(ClientEvent::Typing)
    }

    /// When [`Self::poll`] has something to do, if ever.
    pub(crate) fn deadline(&self) -> Option<f64> {
        let retry = match self.link {
            Link::Retrying { at_ms, .. } => Some(at_ms),
            _ => None,
        };
        match (retry, self.resend_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whatever is due at `now_ms`.
    pub(crate) fn poll(&mut self, now_ms: f64) -> Due {
        if let Link::Retrying { at_ms, .. } = self.link
            && at_ms <= now_ms
        {
            return Due::Reconnect;
        }
        match self.resend_at_ms {
            Some(at) if at <= now_ms => {
                self.resend_at_ms = None;
                if self.link == Link::Connected {
                    Due::Resend(self.outbox_events())
                } else {
                    Due::Nothing
                }
            }
            _ => Due::Nothing,
        }
    }

    fn seen(&mut self, id: u64) {
        if self.newest.is_none_or(|newest| newest < id) {
            self.newest = Some(id);
        }
    }

    fn outbox_events(&self) -> Vec<ClientEvent> {
        self.outbox
            .iter()
            .map(|p| ClientEvent::SendMessage {
                message: p.text.clone(),
                client_id: Some(p.client_id.clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ChatMessage;

    fn echo(id: u64, client_id: &str) -> ServerEvent {
        ServerEvent::SendMessage(ChatMessage {
            username: "me".into(),
            message: "hi".into(),
            id,
            ts: "t".into(),
            client_id: Some(client_id.into()),
        })
    }

    fn users() -> ServerEvent {
        ServerEvent::UpdateUsers {
            usernames: vec!["me".into()],
        }
    }

    #[test]
    fn the_outbox_goes_out_on_joining_and_leaves_with_its_echo() {
        let mut s = Supervisor::default();
        assert_eq!(s.connecting(), None);
        assert_eq!(s.send("a".into(), "one".into()), None, "not connected yet");
        let sent = s.received(&users(), 0.0);
        assert_eq!(sent.len(), 1);
        assert_eq!(*s.link(), Link::Connected);
        assert!(s.send("b".into(), "two".into()).is_some());
        assert!(s.received(&echo(7, "a"), 0.0).is_empty());
        assert_eq!(s.outbox().len(), 1);
        // A drop, then a resume from 7 that sends what is still unconfirmed.
        s.closed(1006, String::new(), 1_000.0, 0.0);
        assert!(matches!(s.link(), Link::Retrying { at_ms, .. } if *at_ms == 1_250.0));
        assert_eq!(s.deadline(), Some(1_250.0));
        assert_eq!(s.poll(1_000.0), Due::Nothing);
        assert_eq!(s.poll(1_250.0), Due::Reconnect);
        assert_eq!(s.connecting(), Some(7));
        let sent = s.received(&users(), 2_000.0);
        assert_eq!(
            sent,
            [ClientEvent::SendMessage {
                message: "two".into(),
                client_id: Some("b".into())
            }]
        );
    }

    #[test]
    fn a_policy_close_before_joining_is_a_refusal_and_after_it_a_drop() {
        let mut s = Supervisor::default();
        s.connecting();
        s.closed(
            close_code::POLICY,
            "Username me is already taken".into(),
            0.0,
            0.0,
        );
        assert_eq!(
            *s.link(),
            Link::Refused {
                reason: "Username me is already taken".into()
            }
        );
        assert_eq!(s.deadline(), None, "never retried");

        // Flooding is closed with 1008 too, once joined: retried, and the
        // user keeps their name.
        let mut s = Supervisor::default();
        s.connecting();
        s.received(&users(), 0.0);
        s.closed(
            close_code::POLICY,
            "Sending too fast: slow down".into(),
            0.0,
            0.0,
        );
        assert!(matches!(s.link(), Link::Retrying { .. }));
    }

    #[test]
    fn a_rejoin_refused_as_taken_is_retried_a_while_then_a_refusal() {
        let taken = || "Username me is already taken".to_string();
        let mut s = Supervisor::default();
        s.connecting();
        s.received(&users(), 0.0);
        // The old socket is still held by the server.
        s.closed(1006, String::new(), 1_000.0, 0.0);
        s.connecting();
        s.closed(close_code::POLICY, taken(), 2_000.0, 0.0);
        assert!(
            matches!(s.link(), Link::Retrying { .. }),
            "maybe its own ghost"
        );
        s.connecting();
        s.closed(close_code::POLICY, taken(), 2_000.0 + OWN_GHOST_MS, 0.0);
        assert_eq!(*s.link(), Link::Refused { reason: taken() });
    }

    #[test]
    fn waits_grow_until_a_join_succeeds() {
        let mut s = Supervisor::default();
        let mut waits = Vec::new();
        for _ in 0..4 {
            s.connecting();
            s.closed(1006, String::new(), 0.0, 1.0);
            waits.push(s.deadline().unwrap());
        }
        assert_eq!(waits, [500.0, 1_000.0, 2_000.0, 4_000.0]);
        s.retry_now();
        assert_eq!(s.poll(0.0), Due::Reconnect);
        s.connecting();
        s.received(&users(), 0.0);
        s.closed(1001, "Server is shutting down".into(), 0.0, 1.0);
        assert_eq!(s.deadline(), Some(500.0), "back to the first step");
        s.close();
        s.closed(1006, String::new(), 0.0, 1.0);
        assert_eq!(*s.link(), Link::Closed);
    }

    #[test]
    fn a_paused_delivery_or_a_slow_down_resends_the_outbox_later() {
        let mut s = Supervisor::default();
        s.connecting();
        s.received(&users(), 0.0);
        s.send("a".into(), "one".into());
        let paused = ServerEvent::Error {
            message: format!("{DELIVERY_PAUSED} (…)"),
        };
        s.received(&paused, 100.0);
        s.received(&paused, 200.0);
        assert_eq!(s.deadline(), Some(100.0 + PAUSED_RETRY_MS));
        assert_eq!(s.poll(2_000.0), Due::Nothing);
        assert!(matches!(s.poll(2_100.0), Due::Resend(events) if events.len() == 1));
        assert_eq!(s.deadline(), None);
        let slow = ServerEvent::Error {
            message: format!("{SLOW_DOWN}: the limit is 1 per second"),
        };
        s.received(&slow, 3_000.0);
        assert_eq!(s.deadline(), Some(3_000.0 + PAUSED_RETRY_MS));
    }

    #[test]
    fn typing_is_paced_and_only_sent_when_connected() {
        let mut s = Supervisor::default();
        assert_eq!(s.typing(0.0), None);
        s.received(&users(), 0.0);
        assert_eq!(s.typing(0.0), Some(ClientEvent::Typing));
        assert_eq!(s.typing(1_999.0), None);
        assert_eq!(s.typing(2_000.0), Some(ClientEvent::Typing));
    }
}

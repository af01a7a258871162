//! How many sockets, from whom, how fast.
//!
//! Every handshake asks for a [`Ticket`] before the upgrade; the ticket is
//! held by the connection task and gives its place back when dropped, so
//! the counts cannot drift whichever way a connection ends. Four checks,
//! cheapest-to-refuse first:
//!
//! 1. a name just closed for flooding from this address is refused for
//!    `flood-cooldown-ms` (see below),
//! 2. handshakes per second per IP address (a token bucket per address, so
//!    one reconnect loop cannot monopolise the accept path),
//! 3. open sockets per IP address,
//! 4. open sockets in total.
//!
//! Once admitted, every message a socket sends also spends from its
//! address's budget ([`Ticket::spend`]), on top of the socket's own flood
//! limit (`super::flood`).
//!
//! # One address is many people
//!
//! An office behind NAT, a school, a mobile carrier: hundreds of people
//! can share one address, so nothing here may let one of them shut the
//! others out. The defaults (`--max-connections-per-ip 1000`,
//! `--handshake-rate 50`, `--handshake-burst 100`) let 300 people behind
//! one address all (re)connect within about 5 s of a server restart, while
//! one abuser still cannot hold more than 1,000 sockets (about 15 MiB of
//! the server's memory; 5% of the default total) nor make more than 50
//! handshakes a second. The address's message budget is twenty people
//! sending at the per-socket limit at once
//! ([`crate::server::config::PEOPLE_PER_ADDRESS`]).
//!
//! # Why a cool-down, and why bound to the name
//!
//! The flood limit is per socket, and a new socket starts with a full
//! burst. A flooder that reconnects the moment it is closed would get a
//! fresh burst each time — measured: ~150 reconnects a second with the
//! handshake limit lifted, 3,000 accepted messages a second to everyone,
//! the others' p99 at 3.8× (bench/flood.sh). So after a flooding close:
//!
//! - the same name from the same address is refused (429) for the
//!   cool-down: reconnecting buys nothing;
//! - any other socket from that address admitted during the cool-down
//!   starts with one message's worth instead of the burst: its own rate
//!   still applies in full, which a person typing never notices, but a
//!   flooder that changes its name on each reconnect gets one message per
//!   socket;
//! - everyone else at the address connects and chats as before.
//!
//! Before, the whole address was refused, so one flooder behind a NAT
//! locked out everybody else there.
//!
//! A nameless plain-text client (a tutorial's) asks for no name; the
//! cool-down then binds to "no name" at that address.
//!
//! The address is the TCP peer's, or the one a trusted proxy forwards
//! (`super::client_addr`).

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU32, AtomicU64, Ordering},
    },
    time::Instant,
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use super::refusal::Refusal;
use crate::server::{chat::name_key::name_key, config::Limits};

/// How long a refusal for going too fast (handshake rate, cool-down) is
/// held before it is answered. A client that retries the moment it is
/// refused would otherwise cost a TCP handshake and an HTTP exchange per
/// try, as fast as it can loop: bench/flood.sh measured ~11,800 refusals a
/// second taking 85% of the server's core. Held, it tries once a second.
const HOLD_BACK: std::time::Duration = std::time::Duration::from_secs(1);
/// Refusals held back at once; beyond this they are answered at once, so
/// holding back cannot itself pile up sockets without bound.
const HOLD_BACK_SLOTS: usize = 256;

/// The per-address bucket map is pruned of idle addresses every this many
/// handshakes, so a scan from many addresses cannot grow it without bound.
const PRUNE_EVERY: u64 = 4096;

/// Counts open sockets and paces handshakes.
pub(crate) struct Admission {
    limits: Limits,
    handshakes: DefaultKeyedRateLimiter<IpAddr>,
    handshakes_seen: AtomicU64,
    open: AtomicU32,
    per_address: Mutex<HashMap<IpAddr, Address>>,
    messages: DefaultKeyedRateLimiter<IpAddr>,
    held_back: tokio::sync::Semaphore,
}

/// What is known of one address: kept while it has sockets open or a name
/// cooling down, removed after.
#[derive(Default)]
struct Address {
    open: u32,
    /// Names closed for flooding from here ([`name_key`]s), each until
    /// when. A handful at most: each costs its flooder a cool-down.
    cooling: Vec<(String, Instant)>,
}

impl Address {
    fn is_idle(&self, now: Instant) -> bool {
        self.open == 0 && !self.is_cooling(now)
    }

    /// Whether a flooding close from here is still within its cool-down.
    fn is_cooling(&self, now: Instant) -> bool {
        self.cooling.iter().any(|(_, until)| *until > now)
    }

    /// Until when `key` is refused here, if it is.
    fn refused_until(&mut self, key: &str, now: Instant) -> Option<Instant> {
        self.cooling.retain(|(_, until)| *until > now);
        self.cooling
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, until)| *until)
    }
}

/// One admitted socket's place; dropping it frees the place.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    address: IpAddr,
    /// The name it asked for, as a [`name_key`].
    name: String,
    /// Admitted while a flooding close from its address was cooling down.
    after_flood: bool,
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        let rate = NonZeroU32::new(limits.handshake_rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.handshake_burst).unwrap_or(rate);
        let address_rate = NonZeroU32::new(limits.address_message_rate).unwrap_or(rate);
        let address_burst = NonZeroU32::new(limits.address_message_burst).unwrap_or(address_rate);
        let messages = Quota::per_second(address_rate).allow_burst(address_burst);
        Arc::new(Admission {
            limits,
            handshakes: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            handshakes_seen: AtomicU64::new(0),
            open: AtomicU32::new(0),
            per_address: Mutex::new(HashMap::new()),
            messages: RateLimiter::keyed(messages),
            held_back: tokio::sync::Semaphore::new(HOLD_BACK_SLOTS),
        })
    }

    /// A place for one more socket from `address`, for the user `name`, or
    /// why not.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr, name: &str) -> Result<Ticket, Refusal> {
        let now = Instant::now();
        if self.handshakes_seen.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.handshakes.retain_recent();
            self.handshakes.shrink_to_fit();
            self.messages.retain_recent();
            self.messages.shrink_to_fit();
            self.per_address().retain(|_, known| !known.is_idle(now));
        }
        // The key costs two Unicode normalisations: not for a name too long
        // ever to have joined (so never cooling down), which hyper would
        // let be hundreds of kilobytes.
        let name = if name.len() <= 4 * crate::protocol::MAX_USERNAME_CHARS + 64 {
            name_key(name)
        } else {
            String::new()
        };
        if let Some(until) = self
            .per_address()
            .get_mut(&address)
            .and_then(|a| a.refused_until(&name, now))
        {
            return Err(Refusal::CoolingDown {
                retry_after_secs: seconds_until(until, now),
            });
        }
        if let Err(not_until) = self.handshakes.check_key(&address) {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            return Err(Refusal::HandshakeRate {
                retry_after_secs: seconds_until(now + wait, now),
            });
        }
        let mut per_address = self.per_address();
        let here = per_address.entry(address).or_default();
        if here.open >= self.limits.max_connections_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        // Only ever changed under the map's lock, so check-then-add is safe.
        if self.open.load(Ordering::Relaxed) >= self.limits.max_connections {
            if here.is_idle(now) {
                per_address.remove(&address);
            }
            return Err(Refusal::ServerFull);
        }
        here.open += 1;
        let after_flood = here.is_cooling(now);
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            admission: Arc::clone(self),
            address,
            name,
            after_flood,
        })
    }

    /// Waits [`HOLD_BACK`] before a refusal for going too fast is sent,
    /// while slots last; other refusals go at once.
    pub(crate) async fn hold_back(&self, refusal: &Refusal) {
        if refusal.is_rate()
            && let Ok(_slot) = self.held_back.try_acquire()
        {
            tokio::time::sleep(HOLD_BACK).await;
        }
    }

    /// Sockets open now.
    #[cfg(test)]
    fn open(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }

    fn per_address(&self) -> MutexGuard<'_, HashMap<IpAddr, Address>> {
        // The map holds plain counts: a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is still sound to use.
        self.per_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Ticket {
    /// This socket was closed for flooding: refuse its name from its
    /// address for the cool-down, and start the address's other new
    /// sockets without their burst meanwhile.
    pub(crate) fn flooded(&self) {
        let cooldown = self.admission.limits.flood_cooldown;
        if cooldown.is_zero() {
            return;
        }
        let until = Instant::now() + cooldown;
        if let Some(here) = self.admission.per_address().get_mut(&self.address) {
            here.cooling.retain(|(name, _)| *name != self.name);
            here.cooling.push((self.name.clone(), until));
        }
    }

    /// Whether this socket was admitted while a flooding close from its
    /// address was cooling down: it then starts without its burst.
    pub(crate) fn after_flood(&self) -> bool {
        self.after_flood
    }

    /// Takes one message from the address's budget; `false`: the address
    /// as a whole is sending too fast.
    pub(crate) fn spend(&self) -> bool {
        self.admission.messages.check_key(&self.address).is_ok()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per_address = self.admission.per_address();
        if let Some(here) = per_address.get_mut(&self.address) {
            here.open -= 1;
            if here.is_idle(Instant::now()) {
                per_address.remove(&self.address);
            }
        }
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whole seconds to wait, rounded up, for a `Retry-After` header.
fn seconds_until(until: Instant, now: Instant) -> u64 {
    (until.saturating_duration_since(now).as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(per_ip: u32, total: u32, rate: u32, burst: u32) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_ip: per_ip,
            handshake_rate: rate,
            handshake_burst: burst,
            handshake_timeout: Duration::from_secs(5),
            flood_cooldown: Duration::from_millis(300),
            address_message_rate: 20,
            address_message_burst: 40,
        }
    }

    #[test]
    fn counts_per_address_and_in_total_and_frees_places() {
        let admission = Admission::new(limits(2, 3, 1000, 1000));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = admission.admit(a, "alice").unwrap();
        let _second = admission.admit(a, "alice").unwrap();
        assert_eq!(
            admission.admit(a, "alice").err(),
            Some(Refusal::TooManyFromAddress)
        );
        let _third = admission.admit(b, "bob").unwrap();
        assert_eq!(admission.admit(b, "bob").err(), Some(Refusal::ServerFull));
        drop(first);
        assert_eq!(admission.open(), 2);
        assert!(admission.admit(a, "alice").is_ok());
    }

    #[test]
    fn paces_handshakes_per_address() {
        let admission = Admission::new(limits(100, 100, 1, 3));
        let a: IpAddr = [10, 0, 0, 1].into();
        let tickets: Vec<_> = (0..3)
            .map(|_| admission.admit(a, "alice").unwrap())
            .collect();
        assert!(matches!(
            admission.admit(a, "alice").err(),
            Some(Refusal::HandshakeRate {
                retry_after_secs: 1
            })
        ));
        // Another address has its own bucket.
        assert!(admission.admit([10, 0, 0, 9].into(), "carol").is_ok());
        drop(tickets);
    }

    #[test]
    fn a_flooding_close_refuses_that_name_from_that_address_for_the_cool_down() {
        let admission = Admission::new(limits(100, 100, 1000, 1000));
        let a: IpAddr = [10, 0, 0, 1].into();
        let ticket = admission.admit(a, "Mallory").unwrap();
        assert!(!ticket.after_flood());
        ticket.flooded();
        drop(ticket);
        // The same name (by its key: case does not make a new one) ...
        assert!(matches!(
            admission.admit(a, "mallory").err(),
            Some(Refusal::CoolingDown {
                retry_after_secs: 1
            })
        ));
        // ... but not the neighbours at that address, who start without a
        // burst while the cool-down lasts; nor the name from elsewhere.
        let neighbour = admission.admit(a, "alice").unwrap();
        assert!(neighbour.after_flood());
        let elsewhere = admission.admit([10, 0, 0, 2].into(), "mallory").unwrap();
        assert!(!elsewhere.after_flood());
        std::thread::sleep(Duration::from_millis(350));
        let back = admission.admit(a, "mallory").unwrap();
        assert!(!back.after_flood());
    }

    #[test]
    fn an_address_shares_one_message_budget() {
        let admission = Admission::new(limits(100, 100, 1000, 1000));
        let a: IpAddr = [10, 0, 0, 1].into();
        let first = admission.admit(a, "alice").unwrap();
        let second = admission.admit(a, "bob").unwrap();
        let spent = (0..60)
            .filter(|i| if i % 2 == 0 { &first } else { &second }.spend())
            .count();
        assert_eq!(spent, 40, "the burst, shared by both sockets");
        let other = admission.admit([10, 0, 0, 2].into(), "carol").unwrap();
        assert!(other.spend(), "another address has its own budget");
    }
}

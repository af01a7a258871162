//! How many sockets, from whom, how fast.
//!
//! Every handshake asks for a [`Ticket`] before the upgrade; the ticket is
//! held by the connection task and gives its place back when dropped, so
//! the counts cannot drift whichever way a connection ends. Four checks,
//! cheapest-to-refuse first:
//!
//! 1. an address whose socket was just closed for flooding is refused for
//!    `flood-cooldown-ms` (see below),
//! 2. handshakes per second per IP address (a token bucket per address, so
//!    one reconnect loop cannot monopolise the accept path),
//! 3. open sockets per IP address,
//! 4. open sockets in total.
//!
//! # Why a cool-down
//!
//! The flood limit is per socket, and a new socket starts with a full
//! burst. A flooder that reconnects the moment it is closed would get a
//! fresh burst each time — measured: ~150 reconnects a second with the
//! handshake limit lifted, 3,000 accepted messages a second to everyone,
//! the others' p99 at 3.8× (bench/flood.sh). Refusing the address for a
//! while after a flooding close turns that loop into cheap 429s.
//!
//! The address is the TCP peer's. Behind a reverse proxy every client has
//! the proxy's address; the per-address limits then apply to the proxy as a
//! whole and should be raised.

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
use crate::server::config::Limits;

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
    held_back: tokio::sync::Semaphore,
}

/// What is known of one address: kept while it has sockets open or is
/// cooling down, removed after.
#[derive(Default)]
struct Address {
    open: u32,
    refused_until: Option<Instant>,
}

impl Address {
    fn is_idle(&self, now: Instant) -> bool {
        self.open == 0 && self.refused_until.is_none_or(|until| until <= now)
    }
}

/// One admitted socket's place; dropping it frees the place.
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        let rate = NonZeroU32::new(limits.handshake_rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.handshake_burst).unwrap_or(rate);
        Arc::new(Admission {
            limits,
            handshakes: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            handshakes_seen: AtomicU64::new(0),
            open: AtomicU32::new(0),
            per_address: Mutex::new(HashMap::new()),
            held_back: tokio::sync::Semaphore::new(HOLD_BACK_SLOTS),
        })
    }

    /// A place for one more socket from `address`, or why not.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Ticket, Refusal> {
        let now = Instant::now();
        if self.handshakes_seen.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.handshakes.retain_recent();
            self.handshakes.shrink_to_fit();
            self.per_address().retain(|_, known| !known.is_idle(now));
        }
        if let Some(until) = self
            .per_address()
            .get(&address)
            .and_then(|a| a.refused_until)
            && until > now
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
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            admission: Arc::clone(self),
            address,
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
    /// This socket was closed for flooding: refuse its address for the
    /// cool-down.
    pub(crate) fn flooded(&self) {
        let cooldown = self.admission.limits.flood_cooldown;
        if cooldown.is_zero() {
            return;
        }
        if let Some(here) = self.admission.per_address().get_mut(&self.address) {
            here.refused_until = Some(Instant::now() + cooldown);
        }
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
        }
    }

    #[test]
    fn counts_per_address_and_in_total_and_frees_places() {
        let admission = Admission::new(limits(2, 3, 1000, 1000));
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let first = admission.admit(a).unwrap();
        let _second = admission.admit(a).unwrap();
        assert_eq!(admission.admit(a).err(), Some(Refusal::TooManyFromAddress));
        let _third = admission.admit(b).unwrap();
        assert_eq!(admission.admit(b).err(), Some(Refusal::ServerFull));
        drop(first);
        assert_eq!(admission.open(), 2);
        assert!(admission.admit(a).is_ok());
    }

    #[test]
    fn paces_handshakes_per_address() {
        let admission = Admission::new(limits(100, 100, 1, 3));
        let a: IpAddr = [10, 0, 0, 1].into();
        let tickets: Vec<_> = (0..3).map(|_| admission.admit(a).unwrap()).collect();
        assert!(matches!(
            admission.admit(a).err(),
            Some(Refusal::HandshakeRate {
                retry_after_secs: 1
            })
        ));
        // Another address has its own bucket.
        assert!(admission.admit([10, 0, 0, 9].into()).is_ok());
        drop(tickets);
    }

    #[test]
    fn a_flooding_close_refuses_the_address_for_the_cool_down() {
        let admission = Admission::new(limits(100, 100, 1000, 1000));
        let a: IpAddr = [10, 0, 0, 1].into();
        let ticket = admission.admit(a).unwrap();
        ticket.flooded();
        drop(ticket);
        assert!(matches!(
            admission.admit(a).err(),
            Some(Refusal::CoolingDown {
                retry_after_secs: 1
            })
        ));
        assert!(admission.admit([10, 0, 0, 2].into()).is_ok());
        std::thread::sleep(Duration::from_millis(350));
        assert!(admission.admit(a).is_ok());
    }
}

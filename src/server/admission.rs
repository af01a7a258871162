//! How many sockets, from whom, how fast.
//!
//! Every handshake asks for a [`Ticket`] before the upgrade; the ticket is
//! held by the connection task and gives its place back when dropped, so
//! the counts cannot drift whichever way a connection ends. Three limits,
//! checked cheapest-to-refuse first:
//!
//! 1. handshakes per second per IP address (a token bucket per address, so
//!    one reconnect loop cannot monopolise the accept path),
//! 2. open sockets per IP address,
//! 3. open sockets in total.
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
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use super::{access::Refusal, config::Limits};

/// The per-address bucket map is pruned of idle addresses every this many
/// handshakes, so a scan from many addresses cannot grow it without bound.
const PRUNE_EVERY: u64 = 4096;

/// Counts open sockets and paces handshakes.
pub struct Admission {
    limits: Limits,
    handshakes: DefaultKeyedRateLimiter<IpAddr>,
    handshakes_seen: AtomicU64,
    open: AtomicU32,
    per_address: Mutex<HashMap<IpAddr, u32>>,
}

/// One admitted socket's place; dropping it frees the place.
pub struct Ticket {
    admission: Arc<Admission>,
    address: IpAddr,
}

impl Admission {
    pub fn new(limits: Limits) -> Arc<Self> {
        let rate = NonZeroU32::new(limits.handshake_rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.handshake_burst).unwrap_or(rate);
        Arc::new(Admission {
            limits,
            handshakes: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            handshakes_seen: AtomicU64::new(0),
            open: AtomicU32::new(0),
            per_address: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more socket from `address`, or why not.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Ticket, Refusal> {
        if self.handshakes_seen.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.handshakes.retain_recent();
            self.handshakes.shrink_to_fit();
        }
        if let Err(not_until) = self.handshakes.check_key(&address) {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            return Err(Refusal::HandshakeRate {
                retry_after_secs: (wait.as_secs_f64().ceil() as u64).max(1),
            });
        }
        let mut per_address = self.per_address();
        let here = per_address.entry(address).or_insert(0);
        if *here >= self.limits.max_connections_per_ip {
            return Err(Refusal::TooManyFromAddress);
        }
        // Only ever changed under the map's lock, so check-then-add is safe.
        if self.open.load(Ordering::Relaxed) >= self.limits.max_connections {
            if *here == 0 {
                per_address.remove(&address);
            }
            return Err(Refusal::ServerFull);
        }
        *here += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Ticket {
            admission: Arc::clone(self),
            address,
        })
    }

    /// Sockets open now.
    pub fn open(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }

    fn per_address(&self) -> MutexGuard<'_, HashMap<IpAddr, u32>> {
        // The map holds plain counts: a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is still sound to use.
        self.per_address
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut per_address = self.admission.per_address();
        if let Some(here) = per_address.get_mut(&self.address) {
            *here -= 1;
            if *here == 0 {
                per_address.remove(&self.address);
            }
        }
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
    }
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
}

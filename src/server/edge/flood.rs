//! The per-socket flood limit.
//!
//! Every data frame a client sends (an event, or junk) costs the server a
//! parse and often a store and a broadcast to the room, so each socket gets
//! a token bucket: `message-rate` per second on average, `message-burst` at
//! once. A frame over the limit is not acted on and the client is told to
//! slow down; a client that goes on sending over the limit — more refusals
//! than its burst with never a quiet second between them — is not a person
//! typing and is closed with 1008. Refusals are forgiven only by a quiet
//! second, not by an accepted frame: a script at 100 frames a second gets
//! one accepted every 100 ms and would otherwise never be closed.
//!
//! Two things are shared with the socket's address (`super::admission`):
//! every accepted frame also spends from the address's budget, and a
//! socket opened while a flooding close at its address is cooling down
//! starts with one message's worth, not the burst. A frame the address's budget refuses is
//! answered "slow down" but is not counted against this socket: it may
//! be a neighbour's flood that emptied it.
//!
//! A refusal still costs the server one small error frame, and that frame
//! goes through the client's own reply queue: a flooder that does not read
//! its errors stalls only its own reader, which in turn stops reading its
//! socket, so TCP pushes the flood back onto the flooder.

use std::{
    num::NonZeroU32,
    time::{Duration, Instant},
};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::server::config::SocketSettings;

/// Refusals are forgotten after this long without one.
const FORGIVE_AFTER: Duration = Duration::from_secs(1);

/// One socket's bucket and its recent refusals.
pub(crate) struct FloodGate {
    bucket: DefaultDirectRateLimiter,
    refusals: u32,
    last_refusal: Option<Instant>,
    max_refusals: u32,
}

/// What to do with the frame just received.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accept,
    /// Drop it and say "slow down".
    SlowDown,
    /// Still flooding after being told: close with 1008.
    Close,
}

/// How a socket's bucket starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// With the whole burst: the usual.
    Full,
    /// With one message's worth, refilling at the rate: a socket from an
    /// address whose flooder was just closed. A person's first message goes
    /// at once and the next ones come far slower than the rate; a flooder
    /// back under a new name gets one.
    Lean,
}

impl FloodGate {
    pub(crate) fn new(settings: &SocketSettings, start: Start) -> Self {
        let rate = NonZeroU32::new(settings.message_rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.message_burst).unwrap_or(rate);
        let bucket = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
        if start == Start::Lean
            && let Some(spent) = NonZeroU32::new(burst.get() - 1)
        {
            // Less than the whole burst at once always fits a full bucket.
            let _ = bucket.check_n(spent);
        }
        FloodGate {
            bucket,
            refusals: 0,
            last_refusal: None,
            max_refusals: burst.get(),
        }
    }

    /// Takes a token for one frame, or says why not. `address_allows`
    /// spends from the address's budget, asked only once this socket's own
    /// bucket has a token.
    pub(crate) fn check(&mut self, address_allows: impl FnOnce() -> bool) -> Verdict {
        if self.bucket.check().is_ok() {
            return if address_allows() {
                Verdict::Accept
            } else {
                Verdict::SlowDown
            };
        }
        let now = Instant::now();
        if self
            .last_refusal
            .is_none_or(|last| now.duration_since(last) >= FORGIVE_AFTER)
        {
            self.refusals = 0;
        }
        self.refusals += 1;
        self.last_refusal = Some(now);
        if self.refusals > self.max_refusals {
            Verdict::Close
        } else {
            Verdict::SlowDown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate_from(rate: u32, burst: u32, start: Start) -> FloodGate {
        let settings = SocketSettings {
            stall_timeout: Duration::from_secs(10),
            message_rate: rate,
            message_burst: burst,
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(10),
        };
        FloodGate::new(&settings, start)
    }

    fn gate(rate: u32, burst: u32) -> FloodGate {
        gate_from(rate, burst, Start::Full)
    }

    #[test]
    fn a_steady_flood_above_the_rate_is_closed_though_some_frames_pass() {
        // 50 a second against 10 a second: one in five is accepted.
        let mut gate = gate(10, 5);
        let mut verdicts = Vec::new();
        for _ in 0..100 {
            let verdict = gate.check(|| true);
            if verdict == Verdict::Close {
                break;
            }
            verdicts.push(verdict);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(verdicts.len() < 100, "never closed");
        assert!(verdicts[5..].contains(&Verdict::Accept), "{verdicts:?}");
    }

    #[test]
    fn a_burst_passes_then_slow_down_then_close() {
        let mut gate = gate(1, 3);
        let verdicts: Vec<Verdict> = (0..7).map(|_| gate.check(|| true)).collect();
        use Verdict::*;
        assert_eq!(
            verdicts,
            [Accept, Accept, Accept, SlowDown, SlowDown, SlowDown, Close]
        );
    }

    #[test]
    fn a_lean_start_has_one_message_then_the_rate() {
        let mut gate = gate_from(10, 5, Start::Lean);
        assert_eq!(gate.check(|| true), Verdict::Accept);
        assert_eq!(gate.check(|| true), Verdict::SlowDown);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(gate.check(|| true), Verdict::Accept);
    }

    #[test]
    fn an_address_out_of_budget_slows_a_socket_without_closing_it() {
        let mut gate = gate(1000, 1000);
        for _ in 0..50 {
            assert_eq!(gate.check(|| false), Verdict::SlowDown);
        }
        assert_eq!(gate.check(|| true), Verdict::Accept);
    }
}

//! The per-socket flood limit.
//!
//! Every data frame a client sends (an event, or junk) costs the server a
//! parse and often a store and a broadcast to the room, so each socket gets
//! a token bucket: `message-rate` per second on average, `message-burst` at
//! once. A frame over the limit is not acted on and the client is told to
//! slow down; a client that goes on sending as fast as before — as many
//! refusals in a row as its burst, with nothing accepted in between — is
//! not a person typing and is closed with 1008.
//!
//! A refusal still costs the server one small error frame, and that frame
//! goes through the client's own reply queue: a flooder that does not read
//! its errors stalls only its own reader, which in turn stops reading its
//! socket, so TCP pushes the flood back onto the flooder.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::config::SocketSettings;

/// One socket's bucket and its count of refusals in a row.
pub struct FloodGate {
    bucket: DefaultDirectRateLimiter,
    refused_in_a_row: u32,
    max_refusals: u32,
}

/// What to do with the frame just received.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Drop it and say "slow down".
    SlowDown,
    /// Still flooding after being told: close with 1008.
    Close,
}

impl FloodGate {
    pub fn new(settings: &SocketSettings) -> Self {
        let rate = NonZeroU32::new(settings.message_rate).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.message_burst).unwrap_or(rate);
        FloodGate {
            bucket: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            refused_in_a_row: 0,
            max_refusals: burst.get(),
        }
    }

    /// Takes a token for one frame, or says why not.
    pub fn check(&mut self) -> Verdict {
        if self.bucket.check().is_ok() {
            self.refused_in_a_row = 0;
            return Verdict::Accept;
        }
        self.refused_in_a_row += 1;
        if self.refused_in_a_row > self.max_refusals {
            Verdict::Close
        } else {
            Verdict::SlowDown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_passes_then_slow_down_then_close() {
        let settings = SocketSettings {
            stall_timeout: Duration::from_secs(10),
            message_rate: 1,
            message_burst: 3,
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(10),
        };
        let mut gate = FloodGate::new(&settings);
        let verdicts: Vec<Verdict> = (0..7).map(|_| gate.check()).collect();
        use Verdict::*;
        assert_eq!(
            verdicts,
            [Accept, Accept, Accept, SlowDown, SlowDown, SlowDown, Close]
        );
    }
}

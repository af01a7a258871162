//! How fast a client sends.

use crate::protocol::{DEFAULT_MESSAGE_BURST, DEFAULT_MESSAGE_RATE};

/// A client's own token bucket, a little under the server's default flood
/// limit: a burst of queued messages (the outbox after a reconnect, a fast
/// typist) goes out as fast as the server takes it instead of being
/// refused with "Slow down" and left "Sending…".
pub(crate) struct Pace {
    tokens: f64,
    at_ms: f64,
}

impl Pace {
    const PER_MS: f64 = DEFAULT_MESSAGE_RATE as f64 * 0.9 / 1000.0;
    const BURST: f64 = (DEFAULT_MESSAGE_BURST - 2) as f64;

    pub(crate) fn new(now_ms: f64) -> Self {
        Pace {
            tokens: Self::BURST,
            at_ms: now_ms,
        }
    }

    /// Takes a token for one frame sent at `now_ms`: how many ms to wait
    /// before sending it.
    pub(crate) fn take(&mut self, now_ms: f64) -> f64 {
        let elapsed = (now_ms - self.at_ms).max(0.0);
        self.tokens = (self.tokens + elapsed * Self::PER_MS).min(Self::BURST) - 1.0;
        self.at_ms = now_ms;
        if self.tokens >= 0.0 {
            0.0
        } else {
            -self.tokens / Self::PER_MS
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_frames_never_exceed_the_servers_default_bucket() {
        // 200 frames queued at once, sent when the pace allows.
        let mut pace = Pace::new(0.0);
        let mut now = 0.0;
        let (rate, burst) = (
            f64::from(DEFAULT_MESSAGE_RATE) / 1000.0,
            f64::from(DEFAULT_MESSAGE_BURST),
        );
        let (mut server_tokens, mut server_at) = (burst, 0.0);
        for frame in 0..200 {
            now += pace.take(now);
            server_tokens = (server_tokens + (now - server_at) * rate).min(burst);
            server_at = now;
            assert!(
                server_tokens >= 1.0,
                "frame {frame} at {now} ms would be refused"
            );
            server_tokens -= 1.0;
        }
        // The first 18 go at once, the rest at 9 a second.
        assert!((now - 182.0 / 9.0 * 1000.0).abs() < 1.0, "{now}");
    }
}

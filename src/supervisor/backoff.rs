//! When to try again after the connection drops.

/// The first retry comes after about this long…
const BASE_MS: f64 = 500.0;
/// …and the wait doubles per failure up to this.
const MAX_MS: f64 = 15_000.0;

/// How long to wait before retry number `failures` (0 for the first),
/// given `random` in [0, 1).
///
/// Exponential and capped, with half of it random ("equal jitter"): when a
/// server restarts, its thousands of clients come back spread over the
/// window rather than all in the same millisecond, and none waits less
/// than half the step.
pub(crate) fn delay_ms(failures: u32, random: f64) -> f64 {
    let step = (BASE_MS * 2f64.powi(failures.min(16) as i32)).min(MAX_MS);
    step / 2.0 + random.clamp(0.0, 1.0) * step / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap_with_jitter() {
        assert_eq!(delay_ms(0, 0.0), 250.0);
        assert_eq!(delay_ms(0, 1.0), 500.0);
        assert_eq!(delay_ms(3, 0.0), 2_000.0);
        assert_eq!(delay_ms(10, 0.0), 7_500.0);
        assert_eq!(delay_ms(10, 1.0), 15_000.0);
        assert_eq!(delay_ms(u32::MAX, 0.5), 11_250.0);
    }
}

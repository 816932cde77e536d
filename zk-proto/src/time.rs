//! Saturating instant arithmetic: no configured duration, however large, can
//! overflow an `Instant` (and panic) when a deadline is computed.

use std::time::{Duration, Instant};

/// The longest delay a deadline is ever set at: about 30 years, "never" for a
/// session. Longer durations (up to `Duration::MAX`) are capped to it.
pub const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// `t + d`, with `d` capped at [`FAR_FUTURE`]: the cap keeps every deadline
/// representable (by `Instant` and by the adapters' timers) and never panics.
///
/// Why: a deadline computed from a configured duration (which may be
/// `Duration::MAX` for "never") must not panic where `t + d` would.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use zk_proto::time::{later, FAR_FUTURE};
///
/// let t = Instant::now(); // clock-exception: a doc example needs a start instant
/// assert_eq!(later(t, Duration::from_secs(5)), t + Duration::from_secs(5));
/// assert_eq!(later(t, Duration::MAX), t + FAR_FUTURE);
/// ```
pub fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d.min(FAR_FUTURE)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // a test needs some instant to start from
    fn later_saturates() {
        let t = Instant::now(); // clock-exception: a unit test needs some instant to start from
        assert_eq!(later(t, Duration::from_secs(5)), t + Duration::from_secs(5));
        assert_eq!(later(t, Duration::MAX), t + FAR_FUTURE);
        assert_eq!(
            later(later(t, Duration::MAX), Duration::MAX),
            t + 2 * FAR_FUTURE
        );
    }
}

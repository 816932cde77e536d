//! Where the client core takes its time from.
//!
//! The core never reads the system clock itself: the adapter hands it a
//! [`Clock`]. zk-tokio passes tokio's clock, so a test on a paused runtime runs
//! the whole stack (core, driver, timers) on virtual time; zk-smol and
//! zk-blocking take the system clock, or a [`ManualClock`] that a test advances
//! by hand. An idle hour then costs a test milliseconds.

use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

/// A source of time for the client core and its driver.
pub trait Clock: Send + Sync + 'static {
    /// The current instant. Must never go backwards.
    fn now(&self) -> Instant;

    /// For virtual clocks: arranges for `waker` to be woken once [`now`](Clock::now)
    /// reaches `at`, and returns true; the driver then sleeps on its waker alone.
    /// Real clocks return false and the driver arms its runtime's own timer.
    fn wake_at(&self, at: Instant, waker: &Waker) -> bool {
        let _ = (at, waker);
        false
    }
}

/// The operating system's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests of the zk-smol and
/// zk-blocking drivers on virtual time. Clones share one time line.
///
/// ```
/// use std::time::{Duration, Instant};
/// use zk_client::{Clock, ManualClock};
/// let clock = ManualClock::new(Instant::now());
/// let start = clock.now();
/// clock.advance(Duration::from_secs(3600)); // an idle hour, at once
/// assert_eq!(clock.now() - start, Duration::from_secs(3600));
/// // Hand it to zk_blocking::connect_with / zk_smol::connect_with as
/// // `Arc::new(clock.clone())`: the session's pings and timeouts follow it.
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualInner>>,
}

#[derive(Debug)]
struct ManualInner {
    now: Instant,
    timers: Vec<(Instant, Waker)>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Instant) -> ManualClock {
        ManualClock {
            inner: Arc::new(Mutex::new(ManualInner {
                now: start,
                timers: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ManualInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves time forward by `d` and wakes every driver whose deadline is reached.
    pub fn advance(&self, d: Duration) {
        let due: Vec<Waker> = {
            let mut g = self.lock();
            g.now = crate::later(g.now, d);
            let now = g.now;
            let mut due = Vec::new();
            g.timers.retain(|(at, w)| {
                if *at <= now {
                    due.push(w.clone());
                    false
                } else {
                    true
                }
            });
            due
        };
        for w in due {
            w.wake();
        }
    }

    /// The earliest deadline a driver is waiting for, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.lock().timers.iter().map(|(t, _)| *t).min()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.lock().now
    }

    fn wake_at(&self, at: Instant, waker: &Waker) -> bool {
        let mut g = self.lock();
        if at <= g.now {
            drop(g);
            waker.wake_by_ref();
            return true;
        }
        // One entry per driver waker: a re-armed deadline replaces the old one.
        g.timers.retain(|(_, w)| !w.will_wake(waker));
        g.timers.push((at, waker.clone()));
        true
    }
}

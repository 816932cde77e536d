//! Retrying calls the way kazoo's `KazooRetry` does, but only where repeating is safe.
//!
//! A read can always be repeated. A write that failed with ConnectionLoss or a
//! timeout may have been applied, so [`Idempotence::Write`] calls are retried only
//! after errors that prove nothing was applied (throttling, not connected, a full
//! queue); otherwise the error is returned as it is and says the outcome is
//! unknown. When the policy gives up (tries or deadline used up) the result is
//! [`Error::RetryFailed`], carrying the last error.
//!
//! kazoo's knobs map one to one: `max_tries` (`None` for kazoo's -1, unlimited),
//! `delay`, `backoff`, `max_jitter`, `max_delay`, `deadline`, `ignore_expire`
//! ([`RetryPolicy::retry_on_expiry`]) and `interrupt` ([`Interrupt`]).
//!
//! Each adapter runs a policy with its own timer: `zk_tokio::retry(&policy, kind,
//! op)` or `client.retry(kind, op)` (the builder's `command_retry`); the same on
//! zk-smol; `client.retry(kind, |zk| ...)` on zk-blocking.
//!
//! ```no_run
//! # async fn demo(zk: zk_client::Client) -> zk_client::Result<()> {
//! use zk_client::retry::{Idempotence, RetryPolicy};
//! # async fn sleep(_: std::time::Duration) {}
//! let policy = RetryPolicy::default();
//! // A read: repeated after ConnectionLoss, Timeout, and (by default) expiry.
//! let (data, _) = policy
//!     .run(Idempotence::Safe, sleep, || zk.get_data("/config"))
//!     .await?;
//! // A plain write: repeated only when nothing can have been applied.
//! policy
//!     .run(Idempotence::Write, sleep, || zk.set_data("/config", &data[..], None))
//!     .await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Stops a retry loop from another task or thread (kazoo's `interrupt`): the loop
/// returns [`Error::Interrupted`] before its next attempt.
///
/// ```
/// use zk_client::retry::{Idempotence, Interrupt, RetryPolicy};
/// use zk_client::Error;
/// let stop = Interrupt::new();
/// let policy = RetryPolicy::forever().with_interrupt(stop.clone());
/// let mut tries = 0;
/// let r: Result<(), Error> = zk_client::blocking::block_on(
///     policy.run(Idempotence::Safe, |_| std::future::ready(()), || {
///         tries += 1;
///         if tries == 3 {
///             stop.interrupt(); // e.g. from a shutdown handler
///         }
///         std::future::ready(Err(Error::ConnectionLoss))
///     }),
///     None,
/// )
/// .unwrap();
/// assert_eq!(r, Err(Error::Interrupted));
/// assert_eq!(tries, 3);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A fresh, unset flag.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }
    /// Asks every loop holding this flag to stop.
    pub fn interrupt(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether it was set.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl PartialEq for Interrupt {
    fn eq(&self, other: &Interrupt) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// kazoo's retry knobs.
///
/// ```
/// use std::time::Duration;
/// use zk_client::retry::RetryPolicy;
/// // kazoo's KazooRetry(max_tries=3, delay=0.1, backoff=2, max_jitter=0.4, max_delay=60):
/// let p = RetryPolicy {
///     max_tries: Some(3),
///     delay: Duration::from_millis(100),
///     backoff: 2.0,
///     max_jitter: 0.4,
///     max_delay: Duration::from_secs(60),
///     ..RetryPolicy::default()
/// };
/// assert_eq!(p, RetryPolicy { max_tries: Some(3), ..RetryPolicy::default() });
/// assert_eq!(RetryPolicy::forever().max_tries, None); // max_tries=-1
/// assert_eq!(RetryPolicy::none().max_tries, Some(1)); // one attempt, no retry
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all; `None` for no limit.
    pub max_tries: Option<u32>,
    /// First delay.
    pub delay: Duration,
    /// Multiplier per attempt.
    pub backoff: f64,
    /// Random extra delay up to this fraction of the delay.
    pub max_jitter: f64,
    /// Delay cap.
    pub max_delay: Duration,
    /// Give up once this much time has passed overall.
    pub deadline: Option<Duration>,
    /// Retry reads after the session expired (kazoo's `ignore_expire`, default
    /// true): the next attempt runs on the new session. Writes never are (an
    /// expired session's last requests have an unknown outcome).
    pub retry_on_expiry: bool,
    /// Checked before every attempt after the first.
    pub interrupt: Option<Interrupt>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_tries: Some(5),
            delay: Duration::from_millis(100),
            backoff: 2.0,
            max_jitter: 0.4,
            max_delay: Duration::from_secs(60),
            deadline: None,
            retry_on_expiry: true,
            interrupt: None,
        }
    }
}

/// Whether a call may be repeated after an error with unknown outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotence {
    /// Reads, or writes made safe (versioned, checked): repeat after connection errors.
    Safe,
    /// Plain writes: never repeat after an outcome-unknown error.
    Write,
}

impl RetryPolicy {
    /// No retries.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_tries: Some(1),
            ..Default::default()
        }
    }

    /// Retries without limit (kazoo's `max_tries=-1`).
    pub fn forever() -> RetryPolicy {
        RetryPolicy {
            max_tries: None,
            ..Default::default()
        }
    }

    /// The same policy, stopped by `flag`.
    pub fn with_interrupt(mut self, flag: Interrupt) -> RetryPolicy {
        self.interrupt = Some(flag);
        self
    }

    /// The delay before attempt `n` (1-based: before the second attempt is `n = 1`).
    /// `unit_random` in `0..=1` picks the jitter (`run` draws it at random).
    ///
    /// ```
    /// use std::time::Duration;
    /// use zk_client::retry::RetryPolicy;
    /// let p = RetryPolicy {
    ///     delay: Duration::from_millis(100),
    ///     backoff: 2.0,
    ///     max_delay: Duration::from_millis(500),
    ///     max_jitter: 0.4,
    ///     ..RetryPolicy::default()
    /// };
    /// assert_eq!(p.delay_for(1, 0.0), Duration::from_millis(100));
    /// assert_eq!(p.delay_for(2, 0.0), Duration::from_millis(200));
    /// assert_eq!(p.delay_for(3, 0.0), Duration::from_millis(400));
    /// assert_eq!(p.delay_for(4, 0.0), Duration::from_millis(500)); // capped
    /// assert_eq!(p.delay_for(1, 1.0), Duration::from_millis(140)); // + 40 % jitter at most
    /// ```
    pub fn delay_for(&self, n: u32, unit_random: f64) -> Duration {
        let base =
            self.delay.as_secs_f64() * self.backoff.max(1.0).powi(n.saturating_sub(1) as i32);
        // Huge knobs (Duration::MAX, a backoff that overflows) saturate, never panic.
        let d = Duration::try_from_secs_f64(base.min(self.max_delay.as_secs_f64()))
            .unwrap_or(self.max_delay);
        let extra = self.max_jitter.clamp(0.0, 1.0) * unit_random.clamp(0.0, 1.0);
        d.saturating_add(Duration::try_from_secs_f64(d.as_secs_f64() * extra).unwrap_or_default())
    }

    /// Whether to try again after `err`.
    ///
    /// ```
    /// use zk_client::retry::{Idempotence, RetryPolicy};
    /// use zk_client::{Error, ErrorCode};
    /// let p = RetryPolicy::default();
    /// // A read is repeated after connection trouble and after an expiry...
    /// assert!(p.should_retry(&Error::ConnectionLoss, Idempotence::Safe));
    /// assert!(p.should_retry(&Error::SessionExpired, Idempotence::Safe));
    /// // ...a plain write is not: it may have been applied.
    /// assert!(!p.should_retry(&Error::ConnectionLoss, Idempotence::Write));
    /// assert!(p.should_retry(&Error::NotConnected, Idempotence::Write)); // never sent
    /// // A server answer is final either way.
    /// assert!(!p.should_retry(&Error::Server(ErrorCode::NoNode), Idempotence::Safe));
    /// ```
    pub fn should_retry(&self, err: &Error, kind: Idempotence) -> bool {
        match kind {
            Idempotence::Safe => {
                err.is_retryable() || (self.retry_on_expiry && matches!(err, Error::SessionExpired))
            }
            Idempotence::Write => matches!(
                err,
                Error::NotConnected
                    | Error::QueueFull
                    | Error::OutboundFull
                    | Error::Server(zk_proto::ErrorCode::ThrottledOp)
            ),
        }
    }

    /// Runs `op` until it succeeds, fails for good, or the policy gives up.
    /// `sleep` is the runtime's sleep (each adapter passes its own).
    ///
    /// ```
    /// use zk_client::retry::{Idempotence, RetryPolicy};
    /// use zk_client::Error;
    /// let p = RetryPolicy { max_tries: Some(3), ..RetryPolicy::default() };
    /// let mut attempts = 0;
    /// let r = zk_client::blocking::block_on(
    ///     p.run(Idempotence::Safe, |_| std::future::ready(()), || {
    ///         attempts += 1;
    ///         std::future::ready(if attempts < 3 { Err(Error::ConnectionLoss) } else { Ok(attempts) })
    ///     }),
    ///     None,
    /// );
    /// assert_eq!(r, Some(Ok(3)));
    ///
    /// // Giving up wraps the last error:
    /// let r: Option<Result<(), Error>> = zk_client::blocking::block_on(
    ///     p.run(Idempotence::Safe, |_| std::future::ready(()), || {
    ///         std::future::ready(Err(Error::Timeout))
    ///     }),
    ///     None,
    /// );
    /// assert!(matches!(r, Some(Err(Error::RetryFailed { attempts: 3, .. }))));
    /// ```
    #[allow(clippy::disallowed_methods)]
    pub async fn run<T, F, Fut, S, SF>(
        &self,
        kind: Idempotence,
        mut sleep: S,
        mut op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
        S: FnMut(Duration) -> SF,
        SF: Future<Output = ()>,
    {
        let start = Instant::now();
        // A fresh random seed per run: clients of one fleet must not retry in lockstep.
        let mut seed = crate::random_seed() | 1;
        let mut attempt = 0u32;
        let gave_up = |attempts, last| Error::RetryFailed {
            attempts,
            last: Box::new(last),
        };
        loop {
            if attempt > 0 && self.interrupt.as_ref().is_some_and(Interrupt::is_set) {
                return Err(Error::Interrupted);
            }
            attempt += 1;
            let err = match op().await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if !self.should_retry(&err, kind) {
                return Err(err);
            }
            if self.max_tries.is_some_and(|m| attempt >= m) {
                return Err(gave_up(attempt, err));
            }
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let d = self.delay_for(attempt, (seed >> 11) as f64 / (1u64 << 53) as f64);
            if let Some(dl) = self.deadline {
                if start.elapsed().saturating_add(d) > dl {
                    return Err(gave_up(attempt, err));
                }
            }
            sleep(d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        let p = RetryPolicy {
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            max_jitter: 0.0,
            ..Default::default()
        };
        assert_eq!(p.delay_for(1, 0.5), Duration::from_millis(100));
        assert_eq!(p.delay_for(2, 0.5), Duration::from_millis(200));
        assert_eq!(p.delay_for(3, 0.5), Duration::from_millis(350));
    }

    /// Jitter differs between runs (it used to be seeded from a clock reading
    /// taken just after start, which gave every run the same delay).
    #[test]
    fn jitter_differs_between_runs() {
        let p = RetryPolicy {
            max_tries: Some(2),
            delay: Duration::from_millis(100),
            max_jitter: 1.0,
            ..Default::default()
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut slept = None;
            let _ = crate::blocking::block_on(
                p.run(
                    Idempotence::Safe,
                    |d| {
                        slept = Some(d);
                        std::future::ready(())
                    },
                    || std::future::ready(Err::<(), _>(Error::ConnectionLoss)),
                ),
                None,
            );
            seen.insert(slept.expect("one retry"));
        }
        assert!(seen.len() > 150, "only {} distinct delays", seen.len());
    }

    fn run_sync<T>(
        p: &RetryPolicy,
        kind: Idempotence,
        mut op: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        crate::blocking::block_on(
            p.run(
                kind,
                |_| std::future::ready(()),
                || std::future::ready(op()),
            ),
            None,
        )
        .unwrap()
    }

    #[test]
    fn gives_up_with_the_last_error_and_keeps_other_errors_as_they_are() {
        let p = RetryPolicy {
            max_tries: Some(3),
            ..Default::default()
        };
        let mut n = 0;
        let r: Result<()> = run_sync(&p, Idempotence::Safe, || {
            n += 1;
            Err(Error::ConnectionLoss)
        });
        assert_eq!(n, 3);
        assert_eq!(
            r,
            Err(Error::RetryFailed {
                attempts: 3,
                last: Box::new(Error::ConnectionLoss)
            })
        );
        // A write's unknown outcome is never repeated, and comes back unwrapped.
        let mut n = 0;
        let r: Result<()> = run_sync(&p, Idempotence::Write, || {
            n += 1;
            Err(Error::ConnectionLoss)
        });
        assert_eq!((n, r), (1, Err(Error::ConnectionLoss)));
        // Reads are retried across an expiry unless told not to.
        let mut n = 0;
        let r = run_sync(&p, Idempotence::Safe, || {
            n += 1;
            if n < 2 {
                Err(Error::SessionExpired)
            } else {
                Ok(n)
            }
        });
        assert_eq!(r, Ok(2));
        let strict = RetryPolicy {
            retry_on_expiry: false,
            ..p.clone()
        };
        let r: Result<()> = run_sync(&strict, Idempotence::Safe, || Err(Error::SessionExpired));
        assert_eq!(r, Err(Error::SessionExpired));
    }

    #[test]
    fn unlimited_tries_until_interrupted() {
        let flag = Interrupt::new();
        let p = RetryPolicy::forever().with_interrupt(flag.clone());
        let mut n = 0;
        let r: Result<()> = run_sync(&p, Idempotence::Safe, || {
            n += 1;
            if n == 50 {
                flag.interrupt();
            }
            Err(Error::ConnectionLoss)
        });
        assert_eq!((n, r), (50, Err(Error::Interrupted)));
    }

    #[test]
    fn huge_knobs_saturate() {
        let p = RetryPolicy {
            delay: Duration::MAX,
            max_delay: Duration::MAX,
            backoff: 1e300,
            max_jitter: 1.0,
            ..Default::default()
        };
        assert!(p.delay_for(50, 1.0) >= Duration::from_secs(1 << 40));
    }

    #[test]
    fn writes_are_not_repeated_after_unknown_outcome() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(&Error::ConnectionLoss, Idempotence::Safe));
        assert!(!p.should_retry(&Error::ConnectionLoss, Idempotence::Write));
        assert!(p.should_retry(&Error::NotConnected, Idempotence::Write));
        assert!(!p.should_retry(
            &Error::Server(zk_proto::ErrorCode::NoNode),
            Idempotence::Safe
        ));
    }
}
